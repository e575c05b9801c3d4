"""The products table's single-table layout: products to DynamoDB items and back.

One partition per (organization, SKU): PK ORG#{org}#PRODUCT#{sku}. Items, by SK:
- METADATA: the product as its latest write left it, in GSI1 (organizationId, created_at). Its
  map `listing` holds the listing of the marketplace that first synced the product (its
  owner), and its map `first_point` the first stored price (`price`, `currency`, and
  `recorded_at` when that is not created_at): the first point of the price history.
- LISTING#{marketplace}: the listing of any other marketplace.
- PRICE#{time}#{random}: one per later price change.

So a first sync writes METADATA alone: one write unit while it stays under 1 KB, and one for
its GSI1 entry, which holds its keys only and so is never written again: a price change costs
METADATA and its point, an inventory change METADATA alone. Products stored before `listing` and
`first_point` existed keep a LISTING# item per marketplace and a PRICE# item per point, first
included; reads take those as they are, and the owner's listing moves into METADATA with the
product's next changed write, leaving the owner's LISTING# item unread.

What a write puts is planned here (`plan_write`); how it is put, so that concurrent writers
never undo each other's claims, is services/catalog/store.py's job.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from marketsync.errors import InvalidArgument
from marketsync.marketplaces import MARKETPLACES
from services.catalog.domain import (
    Listing,
    PricePoint,
    Product,
    ProductInput,
    format_price,
    format_timestamp,
    normalize_price,
    parse_timestamp,
)
from services.catalog.dynamo import MAX_ITEM_BYTES, Item, Key, item_size

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets plain dicts.
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

METADATA = "METADATA"
LISTING_PREFIX = "LISTING#"
PRICE_PREFIX = "PRICE#"
OWNER_LISTING = "listing"
FIRST_POINT = "first_point"


def product_pk(organization_id: int, sku: str) -> str:
    return f"ORG#{organization_id}#PRODUCT#{sku}"


def sku_of(pk: str) -> str:
    """A product key's SKU: SKUs hold no '#'."""
    return pk.rsplit("#", 1)[1]


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Everything one product write puts, side items before the METADATA item."""

    sku: str
    product_item: Item
    side_items: list[Item]
    price_point_key: Key | None
    expected_version: int | None  # None: the product must not exist yet
    conditional: bool  # even in a batch: see store.py's note on concurrency


# Products to items


def plan_write(
    organization_id: int, product: ProductInput, current: Item | None, now: datetime
) -> WritePlan | None:
    """What writing `product` over `current` puts; None when the content is already stored."""
    hashed = content_hash(product)
    if current is not None and current.get("content_hash", {}).get("S") == hashed:
        return None
    pk = product_pk(organization_id, product.sku)
    stamp = format_timestamp(now)
    side_items: list[Item] = []
    owner_listing = current.get(OWNER_LISTING, {}) if current else {}
    if product.marketplace:
        listing = _listing_fields(product, stamp)
        if owner_listing and _text(owner_listing["M"], "marketplace") != product.marketplace:
            side_items.append(
                {"PK": {"S": pk}, "SK": {"S": LISTING_PREFIX + product.marketplace}, **listing}
            )
        else:
            owner_listing = {"M": listing}
    first_point = current.get(FIRST_POINT, {}) if current else {}
    price_point_key = None
    if product.price is not None and (current is None or not (first_point or "price" in current)):
        # A price on a product without one, and without a first point: METADATA holds the
        # point, at created_at unless the product was stored without a price first.
        first_point = {
            "M": _compact(
                {
                    "price": {"N": _number(product.price)},
                    "currency": {"S": product.currency},
                    "recorded_at": {"S": stamp} if current else {},
                }
            )
        }
    elif product.price is not None and _price_changed(product, current):
        price_point_key = (pk, f"{PRICE_PREFIX}{stamp}#{uuid.uuid4().hex[:12]}")
        side_items.append(
            _compact(
                {
                    "PK": {"S": pk},
                    "SK": {"S": price_point_key[1]},
                    "price": {"N": _number(product.price)},
                    "currency": {"S": product.currency},
                    "recorded_at": {"S": stamp},
                }
            )
        )
    version = int(current["version"]["N"]) if current else 0
    previous_sync = current.get("synced_at", {}).get("S", "") if current else ""
    product_item = _compact(
        {
            "PK": {"S": pk},
            "SK": {"S": METADATA},
            "organizationId": {"N": str(organization_id)},
            "sku": {"S": product.sku},
            "marketplace": {"S": product.marketplace},
            "title": {"S": product.title},
            "description": {"S": product.description},
            "brand": {"S": product.brand},
            "category": {"S": product.category},
            "price": {"N": _number(product.price)} if product.price is not None else {},
            "currency": {"S": product.currency},
            "inventory_quantity": {"N": str(product.inventory_quantity)},
            "image_url": {"S": product.image_url},
            "asin": {"S": product.asin},
            "created_at": current["created_at"] if current else {"S": stamp},
            "updated_at": {"S": stamp},
            "synced_at": {"S": stamp if product.marketplace else previous_sync},
            OWNER_LISTING: owner_listing,
            FIRST_POINT: first_point,
            "version": {"N": str(version + 1)},
            "content_hash": {"S": hashed},
        }
    )
    return WritePlan(
        sku=product.sku,
        product_item=product_item,
        side_items=side_items,
        price_point_key=price_point_key,
        expected_version=version if current else None,
        conditional=not _past_every_claim(current),
    )


def check_size(plan: WritePlan) -> None:
    """InvalidArgument when an item of the plan is over DynamoDB's 400 KB."""
    for item in (plan.product_item, *plan.side_items):
        if _surely_fits(item):
            continue
        if item_size(item) > MAX_ITEM_BYTES:
            raise InvalidArgument(
                f"product {plan.sku} is too large to store; shorten description or title"
            )


def _surely_fits(item: Item) -> bool:
    """Whether the item's JSON fits the limit: written in C, much cheaper than counting the size
    attribute by attribute, and never shorter than the size DynamoDB counts. Names and strings
    are quoted and escaped to at least their UTF-8 bytes, and each value's type wrapper outweighs
    DynamoDB's bytes for lists, maps and their elements (tests/catalog/test_dynamo.py)."""
    try:
        return len(json.dumps(item)) <= MAX_ITEM_BYTES
    except TypeError:  # raw bytes: count them exactly
        return False


# Flat fields (text, numbers): a shallow dict of them is what `asdict` would copy, faster.
_INPUT_FIELDS = tuple(field.name for field in fields(ProductInput))


def content_hash(product: ProductInput) -> str:
    """What METADATA's `content_hash` holds: equal hashes, nothing to write."""
    content = {name: getattr(product, name) for name in _INPUT_FIELDS}
    content["price"] = format_price(product.price)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _past_every_claim(current: Item | None) -> bool:
    """Whether the stored product has an owner's listing and a first price, so that no write
    can claim either any more. A product stored with a price before first points existed has
    its first point among the PRICE# items: that claim too is made."""
    return (
        current is not None
        and OWNER_LISTING in current
        and (FIRST_POINT in current or "price" in current)
    )


def _listing_fields(product: ProductInput, stamp: str) -> Item:
    """A listing's attributes: METADATA's owner listing holds them as a map, a LISTING# item
    beside its keys."""
    return _compact(
        {
            "marketplace": {"S": product.marketplace},
            "price": {"N": _number(product.price)} if product.price is not None else {},
            "currency": {"S": product.currency},
            "inventory_quantity": {"N": str(product.inventory_quantity)},
            "external_id": {"S": product.external_id},
            "status": {"S": product.listing_status},
            "synced_at": {"S": stamp},
        }
    )


def _number(price: Decimal) -> str:
    """Fixed-point text: "100", never "1E+2"."""
    return format(price, "f")


def _compact(item: Item) -> Item:
    """Leave out empty values: absent reads back as empty, and every server accepts it."""
    return {name: value for name, value in item.items() if value and next(iter(value.values()))}


def _price_changed(product: ProductInput, current: Item | None) -> bool:
    if current is None or "price" not in current:
        return True
    stored = Decimal(current["price"]["N"])
    return stored != product.price or current.get("currency", {}).get("S", "") != product.currency


# Items to products


def product_from_item(item: Item, listings: tuple[Listing, ...]) -> Product:
    synced_at = _text(item, "synced_at")
    return Product(
        sku=_text(item, "sku"),
        marketplace=_text(item, "marketplace"),
        title=_text(item, "title"),
        description=_text(item, "description"),
        brand=_text(item, "brand"),
        category=_text(item, "category"),
        price=_price(item),
        currency=_text(item, "currency"),
        inventory_quantity=int(item["inventory_quantity"]["N"]),
        image_url=_text(item, "image_url"),
        asin=_text(item, "asin"),
        created_at=parse_timestamp(_text(item, "created_at")),
        updated_at=parse_timestamp(_text(item, "updated_at")),
        synced_at=parse_timestamp(synced_at) if synced_at else None,
        listings=listings,
    )


def product_listings(product: Item, listing_items: Iterable[Item]) -> tuple[Listing, ...]:
    """A product's listings: the owner's from METADATA, the others' from their LISTING# items
    (the last given for a marketplace). An owner's LISTING# item is a leftover of the earlier
    layout, older than METADATA's."""
    by_marketplace: dict[str, Mapping[str, AttributeValueTypeDef]] = {
        _text(item, "marketplace"): item for item in listing_items
    }
    if OWNER_LISTING in product:
        by_marketplace[owner_of(product)] = product[OWNER_LISTING]["M"]
    return tuple(
        sorted((_listing_from_item(item) for item in by_marketplace.values()), key=_listing_order)
    )


def owner_of(item: Item) -> str:
    """The marketplace whose listing METADATA holds; empty when it holds none."""
    return _text(item[OWNER_LISTING]["M"], "marketplace") if OWNER_LISTING in item else ""


def price_history(product: Item, items: Iterable[Item]) -> list[PricePoint]:
    """Oldest first: METADATA's first point, then the PRICE# points among `items` (all of them
    for products stored before the first point moved into METADATA)."""
    points = [_point(item) for item in items if item["SK"]["S"].startswith(PRICE_PREFIX)]
    if FIRST_POINT in product:
        points.insert(0, _point(product[FIRST_POINT]["M"], _text(product, "created_at")))
    # By time, not by kind: a product stored before first points existed that lost its price
    # and got one again has its first point in METADATA after its PRICE# points.
    return sorted(points, key=lambda point: point.recorded_at)


def _listing_from_item(item: Mapping[str, AttributeValueTypeDef]) -> Listing:
    return Listing(
        marketplace=_text(item, "marketplace"),
        price=_price(item),
        currency=_text(item, "currency"),
        inventory_quantity=int(item["inventory_quantity"]["N"]),
        external_id=_text(item, "external_id"),
        status=_text(item, "status"),
        synced_at=parse_timestamp(_text(item, "synced_at")),
    )


def _listing_order(listing: Listing) -> int:
    return MARKETPLACES.index(listing.marketplace)


def _point(item: Mapping[str, AttributeValueTypeDef], created_at: str = "") -> PricePoint:
    """A PRICE# item, or METADATA's first point, recorded at created_at unless it says."""
    return PricePoint(
        price=normalize_price(Decimal(item["price"]["N"])),
        currency=_text(item, "currency"),
        recorded_at=parse_timestamp(_text(item, "recorded_at") or created_at),
    )


def _text(item: Mapping[str, AttributeValueTypeDef], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _price(item: Mapping[str, AttributeValueTypeDef]) -> Decimal | None:
    return normalize_price(Decimal(item["price"]["N"])) if "price" in item else None
