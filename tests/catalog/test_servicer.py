"""The catalog servicers: single writes of one product take turns, and the sync write stream
answers every batch with its own counts (moto and dynalite for the stream)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from marketsync.catalog.v1 import catalog_pb2
from marketsync.identity import Identity, bind_identity
from services.catalog.domain import Product, ProductInput
from services.catalog.locks import KeyedLocks
from services.catalog.servicer import CatalogInternalServicer, CatalogServicer
from services.catalog.store import ProductStore

ORG = 31


class SlowStore:
    """Stands in for ProductStore.upsert: takes a while, and records how many writes of each
    SKU ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.most_in_all = 0

    def upsert(self, organization_id: int, product: ProductInput) -> Product:
        with self._lock:
            self.running[product.sku] += 1
            self.most_at_once[product.sku] = max(
                self.most_at_once[product.sku], self.running[product.sku]
            )
            self.most_in_all = max(self.most_in_all, self.running.total())
        time.sleep(0.02)
        with self._lock:
            self.running[product.sku] -= 1
        raise _Stored


class _Stored(Exception):
    """Ends a fake upsert: its answer is of no interest here."""


def test_upserts_of_one_product_take_turns_and_others_go_on_meanwhile() -> None:
    store = SlowStore()
    servicer = CatalogServicer(store)  # type: ignore[arg-type]

    async def upsert(sku: str, price: int) -> None:
        request = catalog_pb2.UpsertProductRequest(
            sku=sku, product=catalog_pb2.Product(price=f"{price}.00", currency="USD")
        )
        with contextlib.suppress(_Stored):
            await servicer.UpsertProduct(request, None)  # type: ignore[arg-type]

    async def scenario() -> None:
        bind_identity(Identity(user_id=1, organization_id=ORG, role="member", session_id=1))
        await asyncio.gather(
            *(upsert("HOT", price) for price in range(40)),
            *(upsert(f"OTHER-{n}", 1) for n in range(4)),
        )

    asyncio.run(scenario())
    assert store.most_at_once["HOT"] == 1
    assert store.most_in_all > 1, "writes of other products did not wait for the hot one"


def test_a_key_lock_is_dropped_once_nobody_holds_or_awaits_it() -> None:
    locks = KeyedLocks()

    async def scenario() -> None:
        async def hold(key: str) -> None:
            async with locks.hold(key):
                await asyncio.sleep(0.01)

        await asyncio.gather(hold("A"), hold("A"), hold("B"))

    asyncio.run(scenario())
    assert len(locks) == 0


def synced(sku: str, price: str = "5.00") -> catalog_pb2.Product:
    return catalog_pb2.Product(
        sku=sku,
        title=f"Item {sku}",
        price=price,
        currency="USD",
        listings=[catalog_pb2.Listing(external_id=f"W-{sku}", status="PUBLISHED")],
    )


def answers_to(
    store: ProductStore, batches: list[list[catalog_pb2.Product]]
) -> list[catalog_pb2.WriteSyncedProductsResponse]:
    async def requests() -> AsyncIterator[catalog_pb2.WriteSyncedProductsRequest]:
        for number, products in enumerate(batches):
            first = number == 0
            yield catalog_pb2.WriteSyncedProductsRequest(
                organization_id=ORG if first else 0,
                marketplace="walmart" if first else "",
                products=products,
            )

    async def scenario() -> list[catalog_pb2.WriteSyncedProductsResponse]:
        servicer = CatalogInternalServicer(store)
        answers: Any = servicer.WriteSyncedProducts(requests(), None)  # type: ignore[arg-type]
        return [answer async for answer in answers]

    return asyncio.run(scenario())


def test_each_synced_batch_is_answered_with_its_own_counts(
    make_store: Callable[..., ProductStore],
) -> None:
    store = make_store()
    first = [synced(f"A{n}") for n in range(3)]
    answers = answers_to(
        store,
        [first, [*first[:2], synced("B0"), synced("BAD\x00SKU"), synced("CHEAP", "0.001")]],
    )
    assert [(a.written, a.unchanged, a.failed_count) for a in answers] == [(3, 0, 0), (1, 2, 2)]
    failed = {f.sku: f.message for f in answers[1].failed}
    assert failed.keys() == {"BAD\x00SKU", "CHEAP"}
    assert failed["BAD\x00SKU"].startswith("sku must not contain control characters")


def test_a_batch_answer_names_at_most_100_failures(
    make_store: Callable[..., ProductStore],
) -> None:
    bad = [synced(f"BAD-{n:03d}", "abc") for n in range(150)]
    [answer] = answers_to(make_store(), [[synced("OK"), *bad]])
    assert (answer.written, answer.failed_count, len(answer.failed)) == (1, 150, 100)
