"""Concurrent writes through Envoy lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from dev.stack import Stack
from tests.integration.catalog_support import (
    all_pages,
    batch,
    new_org,
    product_body,
    put,
    timestamp,
    watch_server_errors,
)
from tests.integration.conftest import Answer, Api

WRITERS = 40
ROUNDS = 5
Result = TypeVar("Result")


@pytest.fixture(autouse=True)
def _no_server_errors(api: Api) -> Iterator[None]:
    yield from watch_server_errors(api)


def all_at_once(stack: Stack, work: Callable[[Api, int], Result], count: int) -> list[Result]:
    """Run work(client, n) for n in range(count), each on its own thread and REST client,
    released together."""
    start = threading.Barrier(count)

    def run(n: int) -> Result:
        client = Api(stack.gateway_url)
        start.wait(timeout=30)
        return work(client, n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_price_changes_each_leave_a_point(api: Api, stack: Stack) -> None:
    org = new_org(api)
    put(api, org, "MUG-1", product_body(price="1.00"))
    # Each writer changes the price several times in a row: 40 writers keep contending for as
    # long as the writes take, not only at the start.
    prices = [[f"{10 + n}.{round_}0" for round_ in range(ROUNDS)] for n in range(WRITERS)]

    def change(client: Api, n: int) -> list[Answer]:
        return [
            put(client, org, "MUG-1", product_body(title=f"Writer {n}", price=price))
            for price in prices[n]
        ]

    answers = [answer for mine in all_at_once(stack, change, WRITERS) for answer in mine]
    assert [answer.status for answer in answers] == [200] * WRITERS * ROUNDS, [
        answer.body for answer in answers if answer.status != 200
    ]
    last = max((answer.body for answer in answers), key=lambda body: timestamp(body["updated_at"]))
    final = api.call("GET", "/api/products/MUG-1", token=org.token).body
    assert final == last
    assert final["title"] == f"Writer {int(final['price'].split('.')[0]) - 10}"
    history = api.call("GET", "/api/products/MUG-1/price-history", token=org.token).body
    points = [point["price"] for point in history["points"]]
    assert points[0] == "1.00"
    assert sorted(points[1:]) == sorted(price for mine in prices for price in mine)
    assert points[-1] == final["price"]
    moments = [timestamp(point["recorded_at"]) for point in history["points"]]
    assert moments == sorted(moments)


def test_concurrent_batches_of_disjoint_skus_are_all_stored(api: Api, stack: Stack) -> None:
    org = new_org(api)
    writers, per_writer = 4, 150

    def upsert(client: Api, n: int) -> Answer:
        products = [
            {"sku": f"W{n}-{k:03d}", **product_body(title=f"Writer {n}")} for k in range(per_writer)
        ]
        return batch(client, org.token, products)

    answers = all_at_once(stack, upsert, writers)
    assert [(a.status, a.body["upserted"], a.body["failed"]) for a in answers] == [
        (200, per_writer, [])
    ] * writers
    products = [product for page in all_pages(api, org.token, 100) for product in page]
    assert sorted(p["sku"] for p in products) == sorted(
        f"W{n}-{k:03d}" for n in range(writers) for k in range(per_writer)
    )
    assert all(p["title"] == f"Writer {p['sku'][1]}" for p in products)


def test_concurrent_batches_of_the_same_skus_leave_whole_products(api: Api, stack: Stack) -> None:
    org = new_org(api)
    writers, skus = 4, 50

    def upsert(client: Api, n: int) -> Answer:
        products = [
            {"sku": f"SKU-{k:02d}", **product_body(title=f"Writer {n}", price=f"{n}.00")}
            for k in range(skus)
        ]
        return batch(client, org.token, products)

    answers = all_at_once(stack, upsert, writers)
    assert [(a.status, a.body["upserted"], a.body["failed"]) for a in answers] == [
        (200, skus, [])
    ] * writers
    products = [product for page in all_pages(api, org.token, 100) for product in page]
    assert len(products) == skus
    # Each product holds one writer's write whole, never a mix of two.
    assert all(p["price"] == f"{p['title'].split()[1]}.00" for p in products)
