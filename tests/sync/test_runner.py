"""The sync runner against stand-ins for auth and the catalog: outcomes, counts and leases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import grpc
from grpc import aio

from marketsync.auth.v1 import auth_pb2
from marketsync.catalog.v1 import catalog_pb2
from marketsync.sync.v1 import sync_pb2
from services.sync.marketplaces import CatalogPage, MarketplaceProduct, StoredEnrichment
from services.sync.runner import SyncRunner


def product(sku: str, quantity: int = 1) -> MarketplaceProduct:
    return MarketplaceProduct(
        sku=sku, marketplace="walmart", title="Mug", description="", brand="", category="",
        price=Decimal("9.99"), currency="USD", inventory_quantity=quantity, image_url="",
        asin="", external_id="W1", status="PUBLISHED",
    )  # fmt: skip


def rpc_error(code: grpc.StatusCode) -> aio.AioRpcError:
    return aio.AioRpcError(code, aio.Metadata(), aio.Metadata(), code.name)


class FakeAuth:
    def __init__(self, heartbeat_error: grpc.StatusCode | None = None) -> None:
        self.heartbeat_error = heartbeat_error
        self.finished: list[auth_pb2.FinishSyncLogRequest] = []
        self.finish_errors: list[grpc.StatusCode] = []

    async def GetMarketplaceCredentials(self, request: Any, **_: Any) -> Any:
        return auth_pb2.GetMarketplaceCredentialsResponse(credentials={"client_id": "c"})

    async def StartSyncLog(self, request: Any, **_: Any) -> sync_pb2.SyncLog:
        return sync_pb2.SyncLog(sync_id=7, marketplace=request.marketplace, status="running")

    async def HeartbeatSyncLog(self, request: Any, **_: Any) -> Any:
        if self.heartbeat_error:
            raise rpc_error(self.heartbeat_error)
        return auth_pb2.HeartbeatSyncLogResponse()

    async def FinishSyncLog(self, request: auth_pb2.FinishSyncLogRequest, **_: Any) -> Any:
        if self.finish_errors:
            raise rpc_error(self.finish_errors.pop(0))
        self.finished.append(request)
        return sync_pb2.SyncLog()


class FakeStream:
    def __init__(self, answer: catalog_pb2.WriteSyncedProductsResponse) -> None:
        self.answer = answer
        self.written: list[catalog_pb2.Product] = []

    async def write(self, request: catalog_pb2.WriteSyncedProductsRequest) -> None:
        self.written.extend(request.products)

    async def done_writing(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def __await__(self) -> Any:
        async def answer() -> catalog_pb2.WriteSyncedProductsResponse:
            return self.answer

        return answer().__await__()


class FakeCatalog:
    def __init__(self, answer: catalog_pb2.WriteSyncedProductsResponse | None = None) -> None:
        self.stream = FakeStream(answer or catalog_pb2.WriteSyncedProductsResponse())

    def WriteSyncedProducts(self, **_: Any) -> FakeStream:
        return self.stream

    async def GetStoredProducts(self, request: Any, **_: Any) -> Any:
        return catalog_pb2.GetStoredProductsResponse()


def run_sync(auth: FakeAuth, catalog: FakeCatalog, pages: Iterator[CatalogPage]) -> None:
    def open_catalogue(
        marketplace: str, credentials: Mapping[str, str], org: int, stored: StoredEnrichment
    ) -> Iterator[CatalogPage]:
        return pages

    async def scenario() -> None:
        runner = SyncRunner(
            auth=auth,  # type: ignore[arg-type]
            catalog=catalog,  # type: ignore[arg-type]
            open_catalogue=open_catalogue,
            heartbeat_seconds=0.01,
        )
        await runner.start(organization_id=1, marketplace="walmart", trigger="manual")
        await asyncio.wait_for(asyncio.gather(*runner._tasks), timeout=10)

    asyncio.run(scenario())


def test_a_value_the_catalog_cannot_hold_fails_that_sku_alone() -> None:
    auth = FakeAuth()
    catalog = FakeCatalog(catalog_pb2.WriteSyncedProductsResponse(written=1))
    run_sync(auth, catalog, iter([CatalogPage(products=[product("OK"), product("BIG", 2**40)])]))

    assert [p.sku for p in catalog.stream.written] == ["OK"]
    [finished] = auth.finished
    assert finished.status == "partial"
    assert (finished.counts.items_fetched, finished.counts.items_failed) == (2, 1)
    assert "BIG" in finished.error


def test_failures_beyond_those_named_are_counted() -> None:
    named = [catalog_pb2.FailedProduct(sku=f"S{n}", message="bad") for n in range(100)]
    answer = catalog_pb2.WriteSyncedProductsResponse(failed=named, failed_count=500)
    auth = FakeAuth()
    run_sync(auth, FakeCatalog(answer), iter([CatalogPage(products=[product("A")])]))

    [finished] = auth.finished
    assert finished.counts.items_failed == 500
    assert finished.error.startswith("500 products could not be stored: S0: bad")
    assert finished.error.endswith("and 495 more")


def test_a_lost_lease_stops_the_sync_without_recording_an_outcome() -> None:
    release = threading.Event()

    def slow_pages() -> Iterator[CatalogPage]:
        release.wait(5)
        yield CatalogPage(products=[product("A")])

    auth = FakeAuth(heartbeat_error=grpc.StatusCode.FAILED_PRECONDITION)
    try:
        run_sync(auth, FakeCatalog(), slow_pages())
    finally:
        release.set()
    assert auth.finished == []


def test_recording_the_outcome_is_retried_while_auth_is_unavailable() -> None:
    auth = FakeAuth()
    auth.finish_errors = [grpc.StatusCode.UNAVAILABLE]
    run_sync(auth, FakeCatalog(), iter([CatalogPage(products=[product("A")])]))
    assert [f.status for f in auth.finished] == ["succeeded"]
