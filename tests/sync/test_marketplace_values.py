"""What each marketplace value that cannot become a product turns into: a skipped item, never a
failure that ends the sync."""

from __future__ import annotations

import gzip
import io
from decimal import Decimal

import pytest

from services.sync.marketplaces import MarketplaceError, MarketplaceProduct, SkippedItem
from services.sync.marketplaces.amazon.inventory import FbaStock, _fulfillable, stock_of
from services.sync.marketplaces.amazon.mapping import Listing, ReportSurvey, listing_of, survey
from services.sync.marketplaces.amazon.reports import ReportDocument
from services.sync.marketplaces.amazon.tsv import ReportRow, rows
from services.sync.marketplaces.records import (
    MAX_QUANTITY,
    parse_quantity,
    require_credentials,
    to_cents,
)
from services.sync.marketplaces.walmart import Quantity, _available_to_sell, _Join

HEADER = "seller-sku\titem-name\tprice\tquantity\tfulfillment-channel\tasin1"


@pytest.mark.parametrize(
    ("value", "quantity"),
    [
        ("0", 0),
        ("42", 42),
        ("007", 7),
        (str(MAX_QUANTITY), MAX_QUANTITY),
        ("0" * 5000 + "3", 3),
        (12, 12),
        (Decimal("12"), 12),
        (Decimal("12.0"), 12),
    ],
)
def test_whole_counts_the_catalog_holds_are_quantities(value: object, quantity: int) -> None:
    assert parse_quantity(value) == quantity


@pytest.mark.parametrize(
    "value",
    [
        "²",
        "٣",
        "1_000",
        "+7",
        " 7",
        "-1",
        "1.5",
        "",
        "9" * 5000,
        str(MAX_QUANTITY + 1),
        MAX_QUANTITY + 1,
        -1,
        True,
        1.0,
        Decimal("1.5"),
        Decimal("-2"),
        Decimal("NaN"),
        Decimal("1E+400"),
        None,
        [3],
    ],
)
def test_anything_else_is_no_quantity(value: object) -> None:
    assert parse_quantity(value) is None


def test_prices_are_kept_to_the_cent_when_that_changes_nothing() -> None:
    assert str(to_cents(Decimal("19.9"))) == "19.90"
    assert str(to_cents(Decimal("19.990"))) == "19.99"
    assert str(to_cents(Decimal("1E+2"))) == "100.00"
    assert to_cents(Decimal("19.999")) is None


def report(*lines: str | bytes, compression: str | None = "GZIP") -> list[ReportRow | SkippedItem]:
    text = b"\r\n".join(line.encode("cp1252") if isinstance(line, str) else line for line in lines)
    raw = io.BytesIO(gzip.compress(text) if compression == "GZIP" else text)
    return list(rows(raw, ReportDocument("https://report", compression), "cp1252"))


def listings(*lines: str | bytes) -> list[Listing | SkippedItem]:
    return [
        row if isinstance(row, SkippedItem) else listing_of(row) for row in report(HEADER, *lines)
    ]


@pytest.mark.parametrize("raw_quantity", ["²", "99999999999", "-3", "4.5", "1_000"])
def test_a_quantity_that_is_not_a_whole_count_skips_its_listing(raw_quantity: str) -> None:
    [skipped] = listings(f"SKU-1\tMug\t9.99\t{raw_quantity}\tDEFAULT\tB01")

    assert isinstance(skipped, SkippedItem)
    assert skipped.sku == "SKU-1"
    assert f"quantity {raw_quantity!r}" in skipped.message
    assert f"from 0 to {MAX_QUANTITY}" in skipped.message


def test_a_price_with_more_than_two_decimal_places_skips_its_listing() -> None:
    [skipped] = listings("SKU-1\tMug\t9.999\t3\tDEFAULT\tB01")

    assert skipped == SkippedItem(
        "SKU-1",
        "Amazon's report gives the price '9.999' with more than 2 decimal places; prices are "
        "kept to the cent, so correct it in Seller Central",
    )


def test_rows_shorter_than_the_header_are_skipped_by_sku_or_line() -> None:
    results = listings("SKU-1\tMug", "", "SKU-3\tCup\t4.50\t2\tDEFAULT\tB03", "\tBox\t1.00")

    assert results[0] == SkippedItem(
        "SKU-1", "Line 2 of Amazon's listings report ends before the price column"
    )
    assert results[1].sku == "SKU-3"
    assert results[2] == SkippedItem("", "Line 5 of Amazon's listings report has no seller-sku")


def test_the_five_bytes_cp1252_leaves_undefined_cost_a_character_not_the_report() -> None:
    title = "Caf\xe9 \x81\x8d\x8f\x90\x9d Mug".encode("latin-1")
    [listing] = whole_listings(b"SKU-1\t" + title + b"\t9.99\t3\tDEFAULT\tB01")

    assert listing.fields["item-name"] == "Café \ufffd\ufffd\ufffd\ufffd\ufffd Mug"
    assert (listing.price, listing.quantity) == (Decimal("9.99"), 3)


def test_a_line_too_long_to_read_is_skipped_and_the_rest_read() -> None:
    read = report(HEADER, "SKU-1\t" + "x" * 200_000, "SKU-2\tCup\t4.50\t2\tDEFAULT\tB02")

    assert read[0] == SkippedItem(
        "",
        "Line 2 of Amazon's listings report is unreadable: field larger than field limit (131072)",
    )
    assert isinstance(read[1], ReportRow)
    assert read[1].fields["seller-sku"] == "SKU-2"


def test_the_report_s_size_counts_every_row_each_a_product_or_a_skipped_item() -> None:
    lines = (
        HEADER,
        "SKU-1\tMug\t9.99\t3\tDEFAULT\tB01",
        "",
        "SKU-2\t" + "x" * 200_000,
        "SKU-3\tCup",
        "SKU-4\tBox\t4.50\t\tAMAZON_NA\tB04",
    )
    raw = io.BytesIO(gzip.compress("\r\n".join(lines).encode("cp1252")))

    surveyed = survey(raw, ReportDocument("https://report", "GZIP"), "cp1252")

    # The blank line is no row; the unreadable one and the short one are skipped items.
    assert surveyed == ReportSurvey(rows=4, fba_skus={"SKU-4"})
    assert len(report(*lines)) == surveyed.rows


def test_a_damaged_report_fails_with_a_message_for_the_seller() -> None:
    raw = io.BytesIO(gzip.compress(HEADER.encode())[:-12])

    with pytest.raises(MarketplaceError, match="listings report arrived damaged") as failure:
        list(rows(raw, ReportDocument("https://report", "GZIP"), "cp1252"))
    assert failure.value.retryable


def test_fba_listings_whose_fulfillable_quantity_is_unreadable_are_skipped() -> None:
    details = {"SKU-1": {"fulfillableQuantity": 7}, "SKU-2": {"fulfillableQuantity": "²"}}
    details |= {"SKU-3": {"fulfillableQuantity": 2**31}, "SKU-4": None}
    stock = FbaStock()
    for sku, summary in details.items():
        stock.add(sku, _fulfillable(sku, summary))

    results = [
        stock_of(listing, stock)
        for listing in whole_listings(
            *(f"SKU-{n}\tBox\t1.00\t\tAMAZON_NA\tB0{n}" for n in range(1, 6))
        )
    ]

    # SKU-4's summary has no details and SKU-5 has no summary at all: neither has FBA stock.
    assert (results[0], results[3], results[4]) == (7, 0, 0)
    assert results[1] == SkippedItem(
        "SKU-2",
        "Amazon's FBA inventory gives the fulfillable quantity '²', not a whole number from 0 "
        f"to {MAX_QUANTITY}",
    )
    assert isinstance(results[2], SkippedItem)
    assert results[2].sku == "SKU-3"


def walmart_item(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "sku": "WM-1",
        "wpid": "7K69FC732QRT",
        "productName": "Mug",
        "productType": "Mugs",
        "price": {"currency": "USD", "amount": Decimal("9.99")},
        "publishedStatus": "PUBLISHED",
    }
    return {**item, **changes}


def whole_listings(*lines: str | bytes) -> list[Listing]:
    """Lines that all read as listings."""
    read = listings(*lines)
    assert all(isinstance(row, Listing) for row in read), read
    return [row for row in read if isinstance(row, Listing)]


def walmart_outcome(
    item: object, stock: dict[str, Quantity] | None = None
) -> MarketplaceProduct | SkippedItem:
    join = _Join()
    join.add_stock((stock or {}).items())
    join.complete_stock()
    page = join.add_items([item])
    [outcome] = page.products + page.skipped
    return outcome


def test_a_good_walmart_item_becomes_a_product() -> None:
    product = walmart_outcome(walmart_item(), {"WM-1": 5})

    assert isinstance(product, MarketplaceProduct)
    assert (product.title, product.price, product.currency) == ("Mug", Decimal("9.99"), "USD")
    assert (product.inventory_quantity, product.external_id) == (5, "7K69FC732QRT")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"productName": 12}, "Walmart gives productName as 12, not text"),
        ({"productType": ["Mugs"]}, "Walmart gives productType as ['Mugs'], not text"),
        ({"wpid": 123456}, "Walmart gives wpid as 123456, not text"),
        ({"publishedStatus": True}, "Walmart gives publishedStatus as True, not text"),
        (
            {"price": {"currency": "usd", "amount": 5}},
            "Walmart gives the currency 'usd', not a three-letter code like USD",
        ),
        (
            {"price": {"currency": 840, "amount": 5}},
            "Walmart gives the currency 840, not a three-letter code like USD",
        ),
        (
            {"price": {"currency": "USD", "amount": Decimal("9.999")}},
            "Walmart gives the price 9.999 with more than 2 decimal places; prices are kept "
            "to the cent, so correct it in Walmart Seller Center",
        ),
        (
            {"price": {"currency": "USD", "amount": Decimal("-1.00")}},
            "Walmart gives the price -1.00, not an amount",
        ),
        (
            {"price": "9.99"},
            "Walmart gives the price as '9.99', not an amount and a currency",
        ),
    ],
)
def test_walmart_values_that_cannot_be_written_skip_their_item(
    changes: dict[str, object], message: str
) -> None:
    assert walmart_outcome(walmart_item(**changes)) == SkippedItem("WM-1", message)


def test_walmart_items_without_a_sku_as_text_are_skipped_without_one() -> None:
    assert walmart_outcome(walmart_item(sku=42)) == SkippedItem(
        "", "Walmart gave an item without a SKU as text (sku 42, wpid '7K69FC732QRT')"
    )
    assert walmart_outcome("WM-1") == SkippedItem(
        "", "Walmart gave an item that is not an object: 'WM-1'"
    )


def node(amount: object) -> dict[str, object]:
    return {"shipNode": "700001", "availToSellQty": {"unit": "EACH", "amount": amount}}


def test_walmart_stock_is_summed_over_nodes_and_capped_at_the_catalog_limit() -> None:
    assert _available_to_sell("WM-1", [node(3), node(Decimal("4.0")), node(None), {}]) == 7
    assert _available_to_sell("WM-1", None) == 0
    assert _available_to_sell("WM-1", [node(MAX_QUANTITY), node(MAX_QUANTITY)]) == MAX_QUANTITY


@pytest.mark.parametrize("amount", ["junk", -4, Decimal("2.5"), 2**31, True])
def test_walmart_stock_that_is_not_a_whole_count_skips_the_item(amount: object) -> None:
    stock = {"WM-1": _available_to_sell("WM-1", [node(1), node(amount)])}

    skipped = walmart_outcome(walmart_item(), stock)

    assert isinstance(skipped, SkippedItem)
    assert skipped.sku == "WM-1"
    assert skipped.message.startswith("Walmart gives the available-to-sell quantity ")
    assert skipped.message.endswith(f"not a whole number from 0 to {MAX_QUANTITY}")


def test_fba_stock_is_kept_to_the_report_s_fba_skus_once_they_are_known() -> None:
    stock = FbaStock()
    stock.add("SKU-1", 4)
    stock.add("ARCHIVED", 9)

    stock.keep_only({"SKU-1", "SKU-2"})
    stock.add("SKU-2", 5)
    stock.add("ALSO-ARCHIVED", 1)

    skus = ("SKU-1", "SKU-2", "ARCHIVED", "ALSO-ARCHIVED")
    assert {sku: stock.quantity(sku) for sku in skus} == {
        "SKU-1": 4,
        "SKU-2": 5,
        "ARCHIVED": 0,
        "ALSO-ARCHIVED": 0,
    }
    assert stock._quantities == {"SKU-1": 4, "SKU-2": 5}


def test_credentials_lacking_a_value_are_refused_naming_every_one_missing() -> None:
    with pytest.raises(MarketplaceError) as refused:
        required = ("client_id", "client_secret", "channel_type")
        require_credentials("walmart", {"client_id": "id", "client_secret": ""}, required)
    assert refused.value.message == (
        "The Walmart credentials have no client_secret, channel_type: save them again"
    )
    assert (refused.value.marketplace, refused.value.retryable) == ("walmart", False)
    require_credentials("amazon", {"refresh_token": "token"}, ("refresh_token",))
