"""What product writes cost in DynamoDB write units, measured from the requests the store sends
(moto and dynalite; on dynalite the table's share is checked against the server's own count).

GSI1 projects keys only: a product's entry is written when the product is created (a unit) and
never again, as its keys never change. So a price change is METADATA and its point, an inventory
change METADATA alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from dev.sandbox.catalogue import (
    AmazonListing,
    WalmartItem,
    amazon_catalogue,
    walmart_catalogue,
)
from services.catalog.domain import ProductInput
from services.catalog.dynamo import item_size
from services.catalog.items import product_pk
from services.catalog.store import ProductStore

from .conftest import CallCounter, Units, WriteUnits

ORG = 31


def amazon_product(listing: AmazonListing) -> ProductInput:
    """An Amazon listing as the sync writes it (the contract's "What a sync writes")."""
    quantity = listing.fulfillable_quantity if listing.is_fba else listing.quantity
    return ProductInput(
        sku=listing.sku,
        marketplace="amazon",
        title=listing.title,
        description=listing.description,
        brand=listing.brand or "",
        category=listing.category or "",
        price=Decimal(listing.price),
        currency="USD",
        inventory_quantity=quantity,
        image_url=listing.main_image or "",
        asin=listing.asin,
        external_id=listing.asin,
        listing_status=listing.status,
    )


def walmart_product(item: WalmartItem) -> ProductInput:
    """A Walmart item as the sync writes it."""
    return ProductInput(
        sku=item.sku,
        marketplace="walmart",
        title=item.product_name,
        category=item.product_type,
        price=item.price,
        currency=item.currency,
        inventory_quantity=item.available_to_sell,
        external_id=item.wpid,
        listing_status=item.published_status,
    )


CATALOGUE = [
    *(amazon_product(listing) for listing in amazon_catalogue("Atzr|write-units-40")),
    *(walmart_product(item) for item in walmart_catalogue("write-units-40")),
]


@pytest.fixture
def units(write_units: WriteUnits, request: pytest.FixtureRequest) -> Callable[[], Units]:
    """Takes the units written since it was last called; on dynalite, which computes what the
    table consumed from item sizes too, the table's share must be what the server says."""
    on_dynalite = request.node.callspec.params["endpoint"] == "dynalite"

    def take() -> Units:
        taken = write_units.take()
        if on_dynalite:
            assert taken.reported_table == taken.table + taken.lease, taken
        return taken

    return take


def each_costs(
    store: ProductStore, units: Callable[[], Units], products: list[ProductInput]
) -> set[tuple[int, int]]:
    """(table, GSI1) units of each product written alone, as a sync's batch writes it."""
    costs = set()
    for product in products:
        units()
        assert store.batch_upsert(ORG, [product]).upserted == 1
        taken = units()
        costs.add((taken.table, taken.index))
    return costs


def test_a_first_synced_product_costs_two_write_units(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    # METADATA alone, the listing and the first price point inside it, and its GSI1 entry.
    assert each_costs(store, units, CATALOGUE) == {(1, 1)}


def test_a_batch_of_new_products_takes_the_creation_lease_once(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    units()
    assert store.batch_upsert(ORG, CATALOGUE).upserted == len(CATALOGUE)
    taken = units()
    assert (taken.table, taken.index) == (len(CATALOGUE), len(CATALOGUE))
    assert taken.lease == 2, "one unit to take it, one to give it back"


def test_a_product_written_by_hand_costs_two_write_units(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    units()
    store.upsert(ORG, ProductInput(sku="MUG", title="Mug", price=Decimal("9.99"), currency="USD"))
    assert units()[:2] == (1, 1)


def test_an_unchanged_resync_costs_nothing(
    store: ProductStore, units: Callable[[], Units], calls: CallCounter
) -> None:
    assert store.batch_upsert(ORG, CATALOGUE).upserted == len(CATALOGUE)
    units()
    calls.counts.clear()
    assert store.batch_upsert(ORG, CATALOGUE).unchanged == len(CATALOGUE)
    assert units() == (0, 0, 0.0, 0)
    assert calls.writes() == 0


def test_a_price_change_costs_two_units_its_point_and_metadata(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    store.batch_upsert(ORG, CATALOGUE)
    repriced = [replace(product, price=Decimal("1.00")) for product in CATALOGUE]
    assert each_costs(store, units, repriced) == {(2, 0)}
    history = store.price_history(ORG, CATALOGUE[0].sku)
    assert [point.price for point in history] == [CATALOGUE[0].price, Decimal("1.00")]


def test_an_inventory_change_costs_metadata_alone(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    store.batch_upsert(ORG, CATALOGUE)
    restocked = [replace(p, inventory_quantity=p.inventory_quantity + 1) for p in CATALOGUE]
    assert each_costs(store, units, restocked) == {(1, 0)}


def test_a_second_marketplace_adds_its_listing_item(
    store: ProductStore, units: Callable[[], Units]
) -> None:
    amazon = CATALOGUE[:20]
    store.batch_upsert(ORG, amazon)
    walmart = [replace(p, marketplace="walmart", external_id=f"W-{p.sku}") for p in amazon]
    # Its LISTING# item and METADATA, which now holds the latest write.
    assert each_costs(store, units, walmart) == {(2, 0)}
    cheaper = [replace(p, price=Decimal("1.00")) for p in walmart]
    # A price of its own is a price change: a point as well.
    assert each_costs(store, units, cheaper) == {(3, 0)}
    product = store.get(ORG, amazon[0].sku)
    assert [(lst.marketplace, lst.price) for lst in product.listings] == [
        ("amazon", amazon[0].price),
        ("walmart", Decimal("1.00")),
    ]


def test_synced_products_stay_well_under_a_kilobyte(
    store: ProductStore, client: Any, table: str
) -> None:
    store.batch_upsert(ORG, CATALOGUE)
    # Another marketplace's write leaves METADATA with the owner's listing beside its fields.
    store.batch_upsert(ORG, [replace(p, marketplace="walmart") for p in CATALOGUE[:40]])
    sizes = [stored_size(client, table, product.sku) for product in CATALOGUE]
    assert max(sizes) < 900, "METADATA nears the 1 KB a write unit covers"


def test_a_larger_product_costs_a_unit_per_started_kilobyte(
    store: ProductStore, units: Callable[[], Units], client: Any, table: str
) -> None:
    long = replace(CATALOGUE[0], description="Made to last. " * 150)
    units()
    store.batch_upsert(ORG, [long])
    kilobytes = -(-stored_size(client, table, long.sku) // 1024)
    assert kilobytes == 3
    assert units()[:2] == (kilobytes, 1), "its index entry holds its keys alone"


def stored_size(client: Any, table: str, sku: str) -> int:
    key = {"PK": {"S": product_pk(ORG, sku)}, "SK": {"S": "METADATA"}}
    return item_size(client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])
