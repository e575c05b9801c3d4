"""Batch upserts: limits, unchanged items, unprocessed items and throttling (moto and dynalite)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from marketsync.backoff import Backoff
from marketsync.errors import InvalidArgument
from services.catalog.domain import Product, ProductInput
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.store import ProductStore

from .conftest import REGION, CallCounter, canned_answer, request_body

ORG = 7


def item(sku: str, **fields: Any) -> ProductInput:
    base = ProductInput(sku=sku, title=f"Item {sku}", price=Decimal("5.00"), currency="USD")
    return replace(base, **fields)


def count_products(store: ProductStore, org: int) -> list[Product]:
    products, token = [], ""
    while True:
        page = store.list_page(org, 100, token)
        products.extend(page.products)
        token = page.next_page_token
        if not token:
            return products


def count_rows(store: ProductStore, org: int) -> list[str]:
    return [product.sku for product in count_products(store, org)]


def test_a_batch_of_1000_with_duplicates_stores_the_last_of_each(
    store: ProductStore, calls: CallCounter
) -> None:
    products = [item(f"SKU-{n:04d}") for n in range(900)]
    products += [item(f"SKU-{n:04d}", title="second") for n in range(0, 200, 2)]
    assert len(products) == 1000
    result = store.batch_upsert(ORG, products)
    assert (result.upserted, result.unchanged, result.failed) == (900, 0, [])
    assert store.get(ORG, "SKU-0002").title == "second"
    assert store.get(ORG, "SKU-0003").title == "Item SKU-0003"
    # A new product is one item, its first price point included, put 25 a call under the
    # organization's creation lease: seen free before the products were read (a GetItem),
    # then taken and given back (two puts). Nobody took it between, so the read still holds.
    assert calls.counts["BatchWriteItem"] == 36
    assert calls.counts["BatchGetItem"] == 9
    assert (calls.counts["GetItem"], calls.counts["PutItem"]) == (1, 2)
    assert sorted(count_rows(store, ORG)) == [f"SKU-{n:04d}" for n in range(900)]


def test_more_than_1000_products_are_refused(store: ProductStore) -> None:
    with pytest.raises(InvalidArgument, match="1000"):
        store.batch_upsert(ORG, [item(f"S{n}") for n in range(1001)])


def test_invalid_products_fail_alone(store: ProductStore) -> None:
    result = store.batch_upsert(
        ORG,
        [
            item("GOOD"),
            item("BAD#SKU"),
            item("CHEAP", price=Decimal("1.001")),
            item("HUGE", description="é" * 50_000, title="€" * 2_000),
        ],
    )
    assert result.upserted == 2, "the longest texts allowed still fit in an item"
    assert dict(result.failed).keys() == {"BAD#SKU", "CHEAP"}
    assert "sku" in dict(result.failed)["BAD#SKU"]
    assert "price" in dict(result.failed)["CHEAP"]
    assert store.get(ORG, "GOOD").title == "Item GOOD"


def test_an_oversized_item_is_refused_before_dynamodb_sees_it(
    store: ProductStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.catalog.items.MAX_ITEM_BYTES", 10_000)
    result = store.batch_upsert(ORG, [item("BIG", description="x" * 20_000), item("SMALL")])
    assert result.upserted == 1
    assert result.failed == [
        ("BIG", "product BIG is too large to store; shorten description or title")
    ]
    with pytest.raises(InvalidArgument, match="too large"):
        store.upsert(ORG, item("BIG", description="x" * 20_000))


def test_an_unchanged_resync_costs_reads_not_writes(
    store: ProductStore, calls: CallCounter
) -> None:
    catalog = [item(f"SKU-{n:03d}", marketplace="amazon", external_id=f"B{n}") for n in range(120)]
    assert store.batch_upsert(ORG, catalog).upserted == 120
    before = store.get(ORG, "SKU-007")
    calls.counts.clear()
    again = store.batch_upsert(ORG, catalog)
    assert (again.upserted, again.unchanged, again.failed) == (0, 120, [])
    assert calls.writes() == 0
    # The products and a look at the creation lease, in case some were new.
    assert calls.counts == {"BatchGetItem": 2, "GetItem": 1}
    assert store.get(ORG, "SKU-007") == before
    changed = [*catalog[:119], replace(catalog[119], inventory_quantity=3)]
    result = store.batch_upsert(ORG, changed)
    assert (result.upserted, result.unchanged) == (1, 119)
    assert store.get(ORG, "SKU-119").listings[0].inventory_quantity == 3
    assert len(store.price_history(ORG, "SKU-119")) == 1


class PartialWrites:
    """A before-call hook that writes half of each BatchWriteItem through another client and
    answers that the other half went unprocessed, as DynamoDB does under load."""

    def __init__(self, endpoint: str, table: str) -> None:
        self.table = table
        self.writer = make_dynamodb_client(REGION, endpoint)
        self.written: Counter[tuple[str, str]] = Counter()

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        requests = request_body(params)["RequestItems"][self.table]
        done, left = requests[: (len(requests) + 1) // 2], requests[(len(requests) + 1) // 2 :]
        self.writer.batch_write_item(RequestItems={self.table: done})
        for request in done:
            key = request["PutRequest"]["Item"]
            self.written[(key["PK"]["S"], key["SK"]["S"])] += 1
        return canned_answer(200, {"UnprocessedItems": {self.table: left} if left else {}})


def synced(sku: str, **fields: Any) -> ProductInput:
    """A product as a sync writes it: once stored, its changes go through BatchWriteItem."""
    return item(sku, marketplace="amazon", external_id=f"B-{sku}", **fields)


def test_unprocessed_items_are_retried_until_all_are_written_once(
    store: ProductStore, client: Any, endpoint: str, table: str
) -> None:
    store.batch_upsert(ORG, [synced(f"SKU-{n:03d}") for n in range(100)])
    partial = PartialWrites(endpoint, table)
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", partial)
    try:
        repriced = [synced(f"SKU-{n:03d}", price=Decimal("6.00")) for n in range(100)]
        result = store.batch_upsert(ORG, repriced)
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", partial)
    assert (result.upserted, result.failed) == (100, [])
    assert result.retries > 0
    assert len(partial.written) == 200  # 100 products and their new price points
    assert set(partial.written.values()) == {1}
    assert {p.price for p in count_products(store, ORG)} == {Decimal("6.00")}


def throttled(times: int) -> Callable[..., Any]:
    """A before-call hook answering the first `times` calls it sees with throttling; the
    store's conditional puts call from several threads at once."""
    left = [times]
    lock = threading.Lock()

    def throttle(**_: Any) -> Any:
        with lock:
            if not left[0]:
                return None
            left[0] -= 1
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
        return canned_answer(400, {"Error": error})

    return throttle


@pytest.mark.parametrize(
    ("operation", "stored_first", "retries"),
    [("BatchWriteItem", True, 3), ("BatchWriteItem", False, 3), ("PutItem", False, 0)],
    ids=["changes", "new-products", "creation-lease"],
)
def test_throttling_is_retried_and_counted(
    store: ProductStore, client: Any, operation: str, stored_first: bool, retries: int
) -> None:
    # Retries count products' writes sent again; taking the creation lease again is not one.
    if stored_first:
        store.batch_upsert(ORG, [synced(f"SKU-{n}") for n in range(10)])
    throttle = throttled(3)
    client.meta.events.register(f"before-call.dynamodb.{operation}", throttle)
    try:
        result = store.batch_upsert(ORG, [synced(f"SKU-{n}", title="new") for n in range(10)])
    finally:
        client.meta.events.unregister(f"before-call.dynamodb.{operation}", throttle)
    assert (result.upserted, result.failed, result.retries) == (10, [], retries)
    assert {p.title for p in count_products(store, ORG)} == {"new"}


def test_what_stays_unwritten_past_the_deadline_is_reported_per_sku(
    make_store: Callable[..., ProductStore], client: Any, table: str
) -> None:
    store = make_store(backoff=Backoff(base_seconds=0.001, cap_seconds=0.01, deadline_seconds=0.2))
    store.batch_upsert(ORG, [synced(f"SKU-{n:02d}") for n in range(20)])

    def never(params: dict[str, Any], **_: Any) -> Any:
        requests = request_body(params)["RequestItems"][table]
        return canned_answer(200, {"UnprocessedItems": {table: requests}})

    # Changes of stored products stay unprocessed, the creation lease keeps being throttled.
    throttle = throttled(10_000)
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", never)
    client.meta.events.register("before-call.dynamodb.PutItem", throttle)
    try:
        result = store.batch_upsert(
            ORG, [synced(f"SKU-{n:02d}", title="changed") for n in range(40)]
        )
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", never)
        client.meta.events.unregister("before-call.dynamodb.PutItem", throttle)
    assert result.upserted == 0
    assert sorted(sku for sku, _ in result.failed) == [f"SKU-{n:02d}" for n in range(40)]
    messages = dict(result.failed)
    assert all("throttling" in messages[f"SKU-{n:02d}"] for n in range(20))
    assert all("busy" in messages[f"SKU-{n:02d}"] for n in range(20, 40))
    assert result.retries > 0
    stored = count_products(store, ORG)
    assert sorted(p.sku for p in stored) == [f"SKU-{n:02d}" for n in range(20)]
    assert all(p.title == f"Item {p.sku}" for p in stored)
