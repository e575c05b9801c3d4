"""Products stored before METADATA held the owner's listing and the first price point: they
read as they did, and their next changed write moves them over (moto and dynalite)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.catalog.domain import ProductInput
from services.catalog.items import content_hash, product_pk
from services.catalog.store import ProductStore

from .conftest import CallCounter, WriteUnits

ORG = 57
SKU = "MUG-1"
AMAZON_AT = "2024-06-01T10:00:00.000000Z"
WALMART_AT = "2024-06-02T10:00:00.000000Z"
AMAZON = ProductInput(
    sku=SKU,
    marketplace="amazon",
    title="Mug",
    price=Decimal("19.99"),
    currency="USD",
    inventory_quantity=4,
    asin="B01",
    external_id="B01",
    listing_status="Active",
)
WALMART = replace(
    AMAZON,
    marketplace="walmart",
    price=Decimal("18.00"),
    inventory_quantity=6,
    asin="",
    external_id="W9",
    listing_status="PUBLISHED",
)


def at(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.fixture
def stored_before(client: Any, table: str) -> None:
    """MUG-1 as the earlier layout kept it after an Amazon sync, then a Walmart one: METADATA
    with the latest write's fields, a LISTING# item per marketplace and a PRICE# item per
    point, the first included."""
    pk = {"PK": {"S": product_pk(ORG, SKU)}}
    items = [
        {
            **pk,
            "SK": {"S": "METADATA"},
            "organizationId": {"N": str(ORG)},
            "sku": {"S": SKU},
            "marketplace": {"S": "walmart"},
            "title": {"S": "Mug"},
            "price": {"N": "18.00"},
            "currency": {"S": "USD"},
            "inventory_quantity": {"N": "6"},
            "created_at": {"S": AMAZON_AT},
            "updated_at": {"S": WALMART_AT},
            "synced_at": {"S": WALMART_AT},
            "version": {"N": "2"},
            "content_hash": {"S": content_hash(WALMART)},
        },
        *(
            {
                **pk,
                "SK": {"S": f"LISTING#{marketplace}"},
                "marketplace": {"S": marketplace},
                "price": {"N": price},
                "currency": {"S": "USD"},
                "inventory_quantity": {"N": quantity},
                "external_id": {"S": external_id},
                "status": {"S": status},
                "synced_at": {"S": stamp},
            }
            for marketplace, price, quantity, external_id, status, stamp in (
                ("amazon", "19.99", "4", "B01", "Active", AMAZON_AT),
                ("walmart", "18.00", "6", "W9", "PUBLISHED", WALMART_AT),
            )
        ),
        *(
            {
                **pk,
                "SK": {"S": f"PRICE#{stamp}#{suffix}"},
                "price": {"N": price},
                "currency": {"S": "USD"},
                "recorded_at": {"S": stamp},
            }
            for price, stamp, suffix in (
                ("19.99", AMAZON_AT, "a1b2c3d4e5f6"),
                ("18.00", WALMART_AT, "0f1e2d3c4b5a"),
            )
        ),
    ]
    for item in items:
        client.put_item(TableName=table, Item=item)


def listings(store: ProductStore) -> list[tuple[str, str, str, datetime]]:
    return [
        (lst.marketplace, lst.external_id, str(lst.price), lst.synced_at)
        for lst in store.get(ORG, SKU).listings
    ]


def history(store: ProductStore) -> list[tuple[str, datetime]]:
    return [(str(point.price), point.recorded_at) for point in store.price_history(ORG, SKU)]


@pytest.mark.usefixtures("stored_before")
def test_a_product_stored_before_reads_as_it_did(store: ProductStore) -> None:
    product = store.get(ORG, SKU)
    assert (product.marketplace, str(product.price), product.inventory_quantity) == (
        "walmart",
        "18.00",
        6,
    )
    assert listings(store) == [
        ("amazon", "B01", "19.99", at(AMAZON_AT)),
        ("walmart", "W9", "18.00", at(WALMART_AT)),
    ]
    assert store.list_page(ORG, 10).products == [product]
    assert store.list_page(ORG, 10, marketplace="amazon").products == [product]
    assert history(store) == [("19.99", at(AMAZON_AT)), ("18.00", at(WALMART_AT))]


@pytest.mark.usefixtures("stored_before")
def test_an_unchanged_resync_of_a_product_stored_before_writes_nothing(
    store: ProductStore, calls: CallCounter
) -> None:
    before = store.get(ORG, SKU)
    assert store.batch_upsert(ORG, [WALMART]).unchanged == 1
    assert calls.writes() == 0
    assert store.get(ORG, SKU) == before


@pytest.mark.usefixtures("stored_before")
def test_the_next_changed_write_moves_the_owner_listing_into_metadata(
    make_store: Callable[..., ProductStore], write_units: WriteUnits
) -> None:
    moments = iter(at(f"2024-06-0{day}T10:00:00.000000Z") for day in (3, 4, 5))
    store = make_store(clock=lambda: next(moments))
    write_units.take()
    store.batch_upsert(ORG, [replace(AMAZON, price=Decimal("21.00"))])
    # METADATA, now holding Amazon's listing, and the new point: as any price change.
    assert write_units.take()[:2] == (2, 0)
    assert listings(store) == [
        ("amazon", "B01", "21.00", at("2024-06-03T10:00:00.000000Z")),
        ("walmart", "W9", "18.00", at(WALMART_AT)),
    ]
    assert history(store)[-1] == ("21.00", at("2024-06-03T10:00:00.000000Z"))

    store.batch_upsert(ORG, [replace(WALMART, price=Decimal("21.00"), inventory_quantity=2)])
    assert write_units.take()[:2] == (2, 0)  # its own LISTING# item and METADATA
    store.batch_upsert(ORG, [replace(AMAZON, price=Decimal("21.00"), inventory_quantity=1)])
    assert write_units.take()[:2] == (1, 0)  # the owner's change: METADATA alone
    assert [(lst.marketplace, lst.inventory_quantity) for lst in store.get(ORG, SKU).listings] == [
        ("amazon", 1),
        ("walmart", 2),
    ]
    assert [price for price, _ in history(store)] == ["19.99", "18.00", "21.00"]


def test_the_content_hash_of_a_product_stays_what_stored_products_hold() -> None:
    """Stored METADATA keeps this hash: if it changed, every next sync would rewrite every
    product as changed."""
    product = replace(WALMART, title="Mug é😀")
    assert content_hash(product) == (
        "a8576933672f7973b49661323fa65a4d05e554b9b7ac30597916207328c5798e"
    )
