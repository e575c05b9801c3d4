"""The deterministic catalogues the sandbox serves.

A catalogue is a pure function of the credential that names it (an Amazon refresh token, a
Walmart client id), so tests can rebuild exactly what the sandbox serves and check every item.
The size comes from the credential: one ending in `-<number>` (`demo-3000`) has that many
products, any other the default.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

DEFAULT_SIZE = 300
MAX_SIZE = 100_000
_SIZE_SUFFIX = re.compile(r"-(\d+)$")

# Titles carry characters that cp1252 and latin-1 encode differently (right quote, trade mark,
# en dash, euro) so that a client
# decoding the report with the wrong code page gets them wrong.
_TITLES = (
    "Café Crème Mug™",
    "Kids\u2019 Rain Boots",
    "Naïve Art Print",
    "Jalapeño Hot Sauce",
    "Smörgåsbord Serving Plate",
    "Über Charging Cable \u2013 2 m",
    "€ Coin Holder",
    "Plain Cotton T-Shirt",
)
_DESCRIPTIONS = (
    'A 12" ruler\u2019s worth of quality.',
    "Crème de la crème \u2013 made to last.",
    "Everyday essential.",
    "",
)
_BRANDS = ("Nestlé Home", "Björk & Co", "Acme", "Zürich Works")
CATEGORIES = ("Kitchen & Dining", "Shoes", "Home Décor", "Grocery", "Electronics")
_WALMART_TYPES = ("Mugs", "Boots", "Posters", "Sauces", "Cables")
FBA_CHANNEL = "AMAZON_NA"
MERCHANT_CHANNEL = "DEFAULT"


@dataclass(frozen=True)
class AmazonListing:
    """One row of an Amazon seller's listings report, with what Amazon knows about its ASIN."""

    sku: str
    asin: str
    title: str
    description: str
    price: str
    quantity: int
    fulfillment_channel: str
    fulfillable_quantity: int
    status: str
    listing_id: str
    brand: str | None
    category: str | None
    main_image: str | None

    @property
    def is_fba(self) -> bool:
        return self.fulfillment_channel != MERCHANT_CHANNEL


@dataclass(frozen=True)
class ShipNode:
    ship_node: str
    available: int


@dataclass(frozen=True)
class WalmartItem:
    sku: str
    wpid: str
    upc: str
    product_name: str
    product_type: str
    price: Decimal
    currency: str
    published_status: str
    nodes: tuple[ShipNode, ...]

    @property
    def available_to_sell(self) -> int:
        return sum(node.available for node in self.nodes)


def catalogue_size(credential: str) -> int:
    match = _SIZE_SUFFIX.search(credential)
    if match is None:
        return DEFAULT_SIZE
    return min(int(match.group(1)), MAX_SIZE)


def _code(seed: str, length: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def _price(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(199, 29_999)) / 100


@lru_cache(maxsize=64)
def amazon_catalogue(refresh_token: str) -> tuple[AmazonListing, ...]:
    return tuple(
        _amazon_listing(refresh_token, index) for index in range(catalogue_size(refresh_token))
    )


def _amazon_listing(refresh_token: str, index: int) -> AmazonListing:
    rng = random.Random(f"amazon:{refresh_token}:{index}")  # noqa: S311 - test data
    # Sellers often list one ASIN under several SKUs (new and used, bundles): every 50th does.
    asin_index = index - 1 if index % 50 == 49 else index
    fba = index % 3 == 0
    return AmazonListing(
        sku=f"AMZ-{index:06d}",
        asin="B0" + _code(f"asin:{refresh_token}:{asin_index}", 8),
        title=f"{rng.choice(_TITLES)} #{index}",
        description=rng.choice(_DESCRIPTIONS),
        price=f"{_price(rng):.2f}",
        quantity=0 if fba else rng.randint(0, 500),
        fulfillment_channel=FBA_CHANNEL if fba else MERCHANT_CHANNEL,
        fulfillable_quantity=rng.randint(1, 900) if fba else 0,
        status="Inactive" if index % 11 == 5 else "Active",
        listing_id=_code(f"listing:{refresh_token}:{index}", 12, "0123456789ABCDEF"),
        brand=None if asin_index % 13 == 7 else _BRANDS[asin_index % len(_BRANDS)],
        category=None if asin_index % 19 == 3 else CATEGORIES[asin_index % len(CATEGORIES)],
        main_image=None
        if asin_index % 17 == 2
        else f"https://m.media-amazon.com/images/I/{asin_index:08d}.jpg",
    )


@lru_cache(maxsize=64)
def amazon_asin_index(refresh_token: str) -> dict[str, AmazonListing]:
    return {listing.asin: listing for listing in amazon_catalogue(refresh_token)}


@lru_cache(maxsize=64)
def walmart_catalogue(client_id: str) -> tuple[WalmartItem, ...]:
    return tuple(_walmart_item(client_id, index) for index in range(catalogue_size(client_id)))


def _walmart_item(client_id: str, index: int) -> WalmartItem:
    rng = random.Random(f"walmart:{client_id}:{index}")  # noqa: S311 - test data
    # Every tenth SKU has no inventory record at all; the others sit on one to three nodes.
    node_count = 0 if index % 10 == 4 else rng.randint(1, 3)
    return WalmartItem(
        sku=f"WM-{index:06d}",
        wpid=_code(f"wpid:{client_id}:{index}", 12),
        upc=_code(f"upc:{client_id}:{index}", 12, "0123456789"),
        product_name=f"{rng.choice(_TITLES)} #{index}",
        product_type=_WALMART_TYPES[index % len(_WALMART_TYPES)],
        price=_price(rng),
        currency="USD",
        published_status="UNPUBLISHED" if index % 9 == 2 else "PUBLISHED",
        nodes=tuple(
            ShipNode(ship_node=f"70{node:04d}", available=rng.randint(0, 120))
            for node in range(node_count)
        ),
    )
