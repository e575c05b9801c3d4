"""From report rows to our products: which rows are listings (a SKU, a price to the cent, a
stock count or FBA), which are FBA, what currency each marketplace prices in, and the product
a listing becomes once its stock and enrichment are known."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.reports import ReportDocument
from services.sync.marketplaces.amazon.tsv import ReportRow, rows
from services.sync.marketplaces.records import (
    MAX_QUANTITY,
    Enrichment,
    MarketplaceProduct,
    SkippedItem,
    parse_quantity,
    shown,
    to_cents,
)

MERCHANT_FULFILLED = "DEFAULT"
CURRENCIES = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1805IZSGTT6HS": "EUR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A21TJRUUN4KGV": "INR",
}


@dataclass(frozen=True)
class Listing:
    """A report row that can become a product."""

    sku: str
    fields: dict[str, str]
    price: Decimal
    # None for an FBA listing: its stock comes from FBA inventory.
    quantity: int | None

    @property
    def asin(self) -> str:
        return self.fields.get("asin1", "")


def listing_of(row: ReportRow) -> Listing | SkippedItem:
    sku = row.fields.get("seller-sku", "")
    if not sku:
        return SkippedItem("", f"Line {row.line} of Amazon's listings report has no seller-sku")
    raw_price = row.fields.get("price")
    if raw_price is None:
        return SkippedItem(
            sku, f"Line {row.line} of Amazon's listings report ends before the price column"
        )
    price = _price(sku, raw_price.strip())
    if isinstance(price, SkippedItem):
        return price
    if _is_fba(row):
        return Listing(sku, row.fields, price, None)
    quantity = _quantity(sku, row)
    if isinstance(quantity, SkippedItem):
        return quantity
    return Listing(sku, row.fields, price, quantity)


@dataclass(frozen=True)
class ReportSurvey:
    """What a pass over the whole report tells before its rows become products."""

    # Every row, readable or not: each becomes a product or a skipped item, so this is the
    # catalogue's size as a sync counts what it fetched.
    rows: int
    # The SKUs of the FBA listings: the only ones whose stock comes from FBA inventory.
    fba_skus: set[str]


def survey(raw: IO[bytes], document: ReportDocument, encoding: str) -> ReportSurvey:
    count, fba = 0, set[str]()
    for row in rows(raw, document, encoding):
        count += 1
        if isinstance(row, ReportRow) and row.fields.get("seller-sku") and _is_fba(row):
            fba.add(row.fields["seller-sku"])
    return ReportSurvey(count, fba)


def product_of(
    listing: Listing, quantity: int, enrichment: Enrichment, currency: str
) -> MarketplaceProduct:
    return MarketplaceProduct(
        sku=listing.sku,
        marketplace=AMAZON,
        title=listing.fields.get("item-name", ""),
        description=listing.fields.get("item-description", ""),
        brand=enrichment.brand,
        category=enrichment.category,
        price=listing.price,
        currency=currency,
        inventory_quantity=quantity,
        image_url=enrichment.image_url,
        asin=listing.asin,
        external_id=listing.asin,
        status=listing.fields.get("status", ""),
    )


def _is_fba(row: ReportRow) -> bool:
    return row.fields.get("fulfillment-channel", MERCHANT_FULFILLED) not in (
        "",
        MERCHANT_FULFILLED,
    )


def _price(sku: str, raw_price: str) -> Decimal | SkippedItem:
    try:
        price = Decimal(raw_price)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price.is_signed():
        return SkippedItem(
            sku, f"Amazon's report gives the price {shown(raw_price)}, not an amount"
        )
    cents = to_cents(price)
    if cents is None:
        return SkippedItem(
            sku,
            f"Amazon's report gives the price {shown(raw_price)} with more than 2 decimal "
            "places; prices are kept to the cent, so correct it in Seller Central",
        )
    return cents


def _quantity(sku: str, row: ReportRow) -> int | SkippedItem:
    raw_quantity = row.fields.get("quantity", "").strip()
    if not raw_quantity:
        return 0
    quantity = parse_quantity(raw_quantity)
    if quantity is None:
        return SkippedItem(
            sku,
            f"Amazon's report gives the quantity {shown(raw_quantity)}, not a whole number "
            f"from 0 to {MAX_QUANTITY}",
        )
    return quantity
