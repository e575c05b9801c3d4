"""Catalog domain: what a product is, and the rules a product write must follow.

The organization a product belongs to is never part of these values: storage takes it as a
separate argument that the caller got from a verified token, so no field here can point a write
or a read at another organization.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal

from marketsync.errors import InvalidArgument
from marketsync.marketplaces import validate_marketplace

MAX_SKU_LENGTH = 100
MAX_INVENTORY_QUANTITY = 2**31 - 1
MAX_BATCH_SIZE = 1000
MAX_DELETE_BATCH_SIZE = 100
MIN_PAGE_SIZE = 1
MAX_PAGE_SIZE = 100

# Characters, not bytes: at four UTF-8 bytes a character the longest possible item stays well
# under DynamoDB's 400 KB, and storage still measures every item before writing it.
TEXT_LIMITS = {
    "title": 2_000,
    "description": 50_000,
    "brand": 200,
    "category": 500,
    "image_url": 2_048,
    "asin": 100,
    "external_id": 100,
    "listing_status": 100,
}

# At most 36 integer digits and 2 decimals keeps a price inside DynamoDB's 38 significant digits;
# no sign, exponent, NaN or Infinity can match.
_PRICE_PATTERN = re.compile(r"[0-9]{1,36}(\.[0-9]{1,2})?")
_CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
# C0, DEL and C1. A SKU travels in URL paths, where Envoy refuses NUL outright, and into logs
# and sync errors, where none of these belongs.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_PRICE_DIGITS = 38
_MAX_PRICE_INTEGER_DIGITS = 36
CENT = Decimal("0.01")
# Quantizing a 38-digit price needs more precision than the default context's 28 digits.
_PRICE_CONTEXT = Context(prec=_MAX_PRICE_DIGITS + 2)


@dataclass(frozen=True, slots=True)
class ProductInput:
    """One product write: a hand-written PUT (marketplace empty) or one item of a sync.

    With a marketplace, the write also replaces that marketplace's listing, whose extra fields
    are `external_id` and `listing_status`.
    """

    sku: str
    marketplace: str = ""
    title: str = ""
    description: str = ""
    brand: str = ""
    category: str = ""
    price: Decimal | None = None
    currency: str = ""
    inventory_quantity: int = 0
    image_url: str = ""
    asin: str = ""
    external_id: str = ""
    listing_status: str = ""


@dataclass(frozen=True, slots=True)
class Listing:
    """One marketplace's offer of a product, as that marketplace's latest sync wrote it."""

    marketplace: str
    price: Decimal | None
    currency: str
    inventory_quantity: int
    external_id: str
    status: str
    synced_at: datetime


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    marketplace: str
    title: str
    description: str
    brand: str
    category: str
    price: Decimal | None
    currency: str
    inventory_quantity: int
    image_url: str
    asin: str
    created_at: datetime
    updated_at: datetime
    synced_at: datetime | None
    listings: tuple[Listing, ...] = ()


@dataclass(frozen=True, slots=True)
class PricePoint:
    price: Decimal
    currency: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ProductPage:
    products: list[Product]
    next_page_token: str  # empty on the last page


@dataclass(slots=True)
class BatchResult:
    """Outcome of a batch upsert, one count per distinct SKU.

    `upserted` SKUs were written, `unchanged` ones already held exactly this content (nothing
    was written for them); both are stored. `retries` counts re-sent DynamoDB requests.
    """

    upserted: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    retries: int = 0

    @property
    def stored(self) -> int:
        return self.upserted + self.unchanged


@dataclass(slots=True)
class BatchDeleteResult:
    """Outcome of a batch delete, one entry per distinct SKU."""

    deleted: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def parse_price(text: str) -> Decimal | None:
    """A price as clients send it ("19.99"); empty means the product has no price."""
    if text == "":
        return None
    if not _PRICE_PATTERN.fullmatch(text):
        raise InvalidArgument(
            f"price must be a non-negative decimal with at most 2 decimal places, like 19.99; "
            f"got {text[:50]!r}"
        )
    return Decimal(text)


def normalize_price(price: Decimal) -> Decimal:
    """Two decimal places, as clients see prices: DynamoDB hands back 19.9 for 19.90."""
    return price.quantize(CENT, context=_PRICE_CONTEXT)


def format_price(price: Decimal | None) -> str:
    return "" if price is None else str(normalize_price(price))


def validate_product_input(product: ProductInput) -> None:
    """Raise InvalidArgument naming the first field that breaks the contract."""
    validate_sku(product.sku)
    validate_marketplace(product.marketplace, empty_allowed=True)
    for name, limit in TEXT_LIMITS.items():
        _check_text(name, getattr(product, name), limit)
    if product.price is not None:
        _check_price(product.price)
        if not _CURRENCY_PATTERN.fullmatch(product.currency):
            raise InvalidArgument(
                f"currency must be an ISO 4217 code of three uppercase letters, like USD; "
                f"got {product.currency[:20]!r}"
            )
    elif product.currency:
        raise InvalidArgument("currency was given without a price; give both or neither")
    _check_inventory(product.inventory_quantity)
    if not product.marketplace and (product.external_id or product.listing_status):
        raise InvalidArgument(
            "external_id and listing_status belong to a marketplace listing; "
            "they need a marketplace"
        )


def validate_sku(sku: str) -> None:
    """The rules of a SKU being written."""
    validate_stored_sku(sku)
    if sku in (".", ".."):
        # Envoy normalizes /api/products/.. away: such a product could never be read or deleted.
        raise InvalidArgument("sku must not be '.' or '..'")
    if found := _CONTROL_CHARACTER.search(sku):
        raise InvalidArgument(
            f"sku must not contain control characters (U+0000 to U+001F, U+007F to U+009F); "
            f"it has U+{ord(found.group()):04X} at character {found.start() + 1}"
        )


def validate_stored_sku(sku: str) -> None:
    """The rules of a SKU naming a product to read or delete. Looser than a write's: products
    stored before control characters were refused keep their SKUs and must stay deletable."""
    if not isinstance(sku, str) or not 1 <= len(sku) <= MAX_SKU_LENGTH:
        raise InvalidArgument(f"sku must be 1 to {MAX_SKU_LENGTH} characters long")
    if "#" in sku:
        raise InvalidArgument("sku must not contain '#'")


def validate_page_size(page_size: int) -> None:
    if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}; got {page_size}"
        )


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be text")
    if len(value) > limit:
        raise InvalidArgument(f"{name} is {len(value)} characters long; the limit is {limit}")


def _check_price(price: Decimal) -> None:
    message = "price must be a non-negative decimal with at most 2 decimal places, like 19.99"
    if not isinstance(price, Decimal) or not price.is_finite() or price.is_signed():
        raise InvalidArgument(message)
    _sign, digits, exponent = price.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -2:
        raise InvalidArgument(message)
    significant = len(digits) + max(exponent, 0)
    integer_digits = significant - max(-exponent, 0)
    if significant > _MAX_PRICE_DIGITS or integer_digits > _MAX_PRICE_INTEGER_DIGITS:
        raise InvalidArgument(f"price has more than {_MAX_PRICE_INTEGER_DIGITS} integer digits")


def _check_inventory(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidArgument("inventory_quantity must be an integer")
    if not 0 <= quantity <= MAX_INVENTORY_QUANTITY:
        raise InvalidArgument(
            f"inventory_quantity must be between 0 and {MAX_INVENTORY_QUANTITY}; got {quantity}"
        )


def format_timestamp(moment: datetime) -> str:
    """Fixed-width RFC 3339 UTC with microseconds, so stored strings sort like the times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
