"""Validation of product writes, prices and timestamps (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from marketsync.errors import InvalidArgument
from services.catalog.domain import (
    TEXT_LIMITS,
    ProductInput,
    format_price,
    format_timestamp,
    parse_price,
    parse_timestamp,
    validate_page_size,
    validate_product_input,
    validate_stored_sku,
)

VALID = ProductInput(sku="SKU-1", title="Mug", price=Decimal("19.99"), currency="USD")


@pytest.mark.parametrize("text", ["0", "19.99", "19.9", "0.01", "1" * 36 + ".99"])
def test_prices_clients_send_are_kept_exactly(text: str) -> None:
    assert parse_price(text) == Decimal(text)


def test_an_empty_price_means_no_price() -> None:
    assert parse_price("") is None


@pytest.mark.parametrize(
    "text",
    ["-1", "1.999", "1e3", "1E+2", "NaN", "Infinity", "-0", " 1", "1,00", ".5", "1.", "1" * 37],
)
def test_malformed_prices_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument, match="price"):
        parse_price(text)


@pytest.mark.parametrize(
    "price",
    [
        Decimal("-1"),
        Decimal("1.001"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-0"),
        Decimal("1E+40"),
        Decimal("1" * 39),
    ],
)
def test_decimal_prices_from_syncs_follow_the_same_rules(price: Decimal) -> None:
    with pytest.raises(InvalidArgument, match="price"):
        validate_product_input(replace(VALID, price=price))


def test_a_price_at_the_digit_limit_formats_with_two_decimals() -> None:
    price = Decimal("9" * 36 + ".5")
    validate_product_input(replace(VALID, price=price))
    assert format_price(price) == "9" * 36 + ".50"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": ""}, "sku"),
        ({"sku": "a" * 101}, "sku"),
        ({"sku": "A#B"}, "sku"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"price": None, "currency": "USD"}, "currency"),
        ({"inventory_quantity": -1}, "inventory_quantity"),
        ({"inventory_quantity": 2**31}, "inventory_quantity"),
        ({"inventory_quantity": True}, "inventory_quantity"),
        ({"marketplace": "ebay"}, "marketplace"),
        ({"external_id": "X1"}, "external_id"),
        *[({name: "x" * (limit + 1)}, name) for name, limit in TEXT_LIMITS.items()],
    ],
)
def test_invalid_fields_are_refused_by_name(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        validate_product_input(replace(VALID, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sku", "named"),
    [
        ("a\x00b", "U+0000 at character 2"),
        ("\tTAB", "U+0009 at character 1"),
        ("LINE\n", "U+000A at character 5"),
        ("x\x1f", "U+001F"),
        ("DEL\x7f", "U+007F"),
        ("C1\x80", "U+0080"),
        ("C1\x9f", "U+009F"),
    ],
)
def test_a_sku_with_a_control_character_is_refused_naming_it(sku: str, named: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_product_input(replace(VALID, sku=sku))
    assert refused.value.message.startswith("sku must not contain control characters")
    assert named in refused.value.message


def test_a_stored_sku_with_a_control_character_can_still_name_its_product() -> None:
    validate_stored_sku("a\x00b")
    with pytest.raises(InvalidArgument, match="sku"):
        validate_stored_sku("A#B")


def test_valid_writes_pass() -> None:
    validate_product_input(VALID)
    validate_product_input(ProductInput(sku="a" * 100))
    # Of what is not ASCII, only C1 control characters are refused.
    validate_product_input(ProductInput(sku="Tasse bleue \u00a0\u00e9-\U0001f600"))
    validate_product_input(
        replace(VALID, marketplace="amazon", external_id="B0001", listing_status="Active")
    )
    validate_product_input(replace(VALID, inventory_quantity=2**31 - 1))


@pytest.mark.parametrize("size", [0, 101, -1])
def test_page_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(InvalidArgument, match="page_size"):
        validate_page_size(size)


def test_timestamps_are_fixed_width_utc_and_sort_like_times() -> None:
    moments = [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=1))),  # 01:00 UTC
    ]
    stamps = [format_timestamp(moment) for moment in moments]
    assert stamps[0] == "2025-01-01T00:00:00.000000Z"
    assert {len(stamp) for stamp in stamps} == {27}
    assert sorted(stamps) == stamps
    assert [parse_timestamp(stamp) for stamp in stamps] == moments
