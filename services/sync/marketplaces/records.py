"""What the marketplace clients hand to a sync: products, skipped items, failures, endpoints."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache

import httpx

# The catalog stores inventory as an int32 and prices to the cent.
MAX_QUANTITY = 2**31 - 1
CENT = Decimal("0.01")
_SHOWN_LENGTH = 40


@dataclass(frozen=True)
class MarketplaceProduct:
    """One marketplace listing, mapped as the contract's "What a sync writes" table says."""

    sku: str
    marketplace: str
    title: str
    description: str
    brand: str
    category: str
    price: Decimal
    currency: str
    inventory_quantity: int
    image_url: str
    asin: str
    external_id: str
    status: str


@dataclass(frozen=True)
class Enrichment:
    """A product's Catalog Items data on Amazon: brand, category and main image."""

    brand: str = ""
    category: str = ""
    image_url: str = ""

    def __bool__(self) -> bool:
        return bool(self.brand or self.category or self.image_url)


# Given SKUs, what an earlier sync stored for them: (ASIN, enrichment) by SKU. Brand, category
# and image rarely change, so a product whose ASIN is unchanged needs no Catalog Items call.
StoredEnrichment = Callable[[list[str]], Awaitable[Mapping[str, tuple[str, Enrichment]]]]


async def nothing_stored(skus: list[str]) -> Mapping[str, tuple[str, Enrichment]]:
    return {}


@dataclass(frozen=True)
class SkippedItem:
    """A listing the marketplace gave that cannot become a product; the rest of the sync goes on."""

    sku: str
    message: str


@dataclass(frozen=True)
class CatalogPage:
    """A bounded slice of a catalogue: a sync writes it, then asks for the next."""

    products: list[MarketplaceProduct] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    # How many items the marketplace says the whole catalogue holds, on every page once it has
    # said (Walmart's first page of items, Amazon's downloaded report); None until then.
    items_total: int | None = None


class MarketplaceError(Exception):
    """A sync cannot go on; the message is for the seller and says what to do.

    `retryable` when the same sync started again later may well succeed (the marketplace kept
    failing or throttling, a report was late or damaged); not when the seller has to act first.
    """

    def __init__(self, marketplace: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.marketplace = marketplace
        self.message = message
        self.retryable = retryable


def require_credentials(
    marketplace: str, credentials: Mapping[str, str], names: Iterable[str]
) -> None:
    """Refuse credentials lacking any of `names`, naming those the seller has to save again."""
    missing = [name for name in names if not credentials.get(name)]
    if missing:
        raise MarketplaceError(
            marketplace,
            f"The {marketplace.capitalize()} credentials have no {', '.join(missing)}: "
            "save them again",
        )


@cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle, some 20 ms of CPU
    that would otherwise hold up the event loop for each sync."""
    return httpx.create_ssl_context()


def parse_quantity(value: object) -> int | None:
    """A stock count the catalog can hold (0..MAX_QUANTITY), from a whole JSON number or ASCII
    digits; None for anything else."""
    if isinstance(value, str):
        count = _digits_value(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        count = int(value) if abs(value) <= MAX_QUANTITY else None
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        count = None
    return count if count is not None and 0 <= count <= MAX_QUANTITY else None


def _digits_value(text: str) -> int | None:
    # "²".isdigit() is true and int() takes " 7", "+7" and "1_000": only ASCII digits count.
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    # Longer than the limit is over it; int() of thousands of digits would be slow, or refused.
    return int(digits) if len(digits) <= len(str(MAX_QUANTITY)) else None


def to_cents(amount: Decimal) -> Decimal | None:
    """The amount with exactly two decimal places, or None when that would change its value.

    An amount too long to quantize is handed on as it is, for the catalog to refuse by name.
    """
    try:
        cents = amount.quantize(CENT)
    except InvalidOperation:
        return amount
    return cents if cents == amount else None


def shown(value: object) -> str:
    """A marketplace value for a message, as it was written (strings quoted), cut short."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."


@dataclass(frozen=True)
class AmazonEndpoints:
    """Where SP-API and Login with Amazon live: operator settings, never tenant data."""

    sp_api: str = "https://sellingpartnerapi-na.amazon.com"
    lwa_token_url: str = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - a URL


@dataclass(frozen=True)
class WalmartEndpoints:
    """Where the Walmart Marketplace API lives (`/v3/...` below it): an operator setting."""

    base_url: str = "https://marketplace.walmartapis.com"
