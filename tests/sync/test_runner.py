"""The sync worker against stand-ins for auth and the catalog: outcomes, counts, claims, leases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import grpc
from grpc import aio

from marketsync.auth.v1 import auth_pb2
from marketsync.catalog.v1 import catalog_pb2
from marketsync.sync.v1 import sync_pb2
from services.sync.marketplaces import (
    CatalogPage,
    MarketplaceError,
    MarketplaceProduct,
    StoredEnrichment,
)
from services.sync.runner import SyncWorker


def product(sku: str, quantity: int = 1) -> MarketplaceProduct:
    return MarketplaceProduct(
        sku=sku, marketplace="walmart", title="Mug", description="", brand="", category="",
        price=Decimal("9.99"), currency="USD", inventory_quantity=quantity, image_url="",
        asin="", external_id="W1", status="PUBLISHED",
    )  # fmt: skip


def rpc_error(code: grpc.StatusCode) -> aio.AioRpcError:
    return aio.AioRpcError(code, aio.Metadata(), aio.Metadata(), code.name)


class FakeAuth:
    """Hands out one claimed sync, then nothing; records what the worker tells it."""

    def __init__(
        self,
        heartbeat_error: grpc.StatusCode | None = None,
        credentials_error: grpc.StatusCode | None = None,
    ) -> None:
        self.heartbeat_error = heartbeat_error
        self.credentials_error = credentials_error
        self.to_claim = [
            auth_pb2.ClaimedSync(
                organization_id=1,
                log=sync_pb2.SyncLog(sync_id=7, marketplace="walmart", status="running", attempt=1),
                claim="claim-1",
            )
        ]
        self.claim_requests: list[auth_pb2.ClaimSyncsRequest] = []
        self.finished: list[auth_pb2.FinishSyncLogRequest] = []
        self.released: list[auth_pb2.ReleaseSyncLogRequest] = []
        self.heartbeats: list[sync_pb2.SyncCounts] = []
        self.finish_errors: list[grpc.StatusCode] = []

    async def ClaimSyncs(self, request: auth_pb2.ClaimSyncsRequest, **_: Any) -> Any:
        self.claim_requests.append(request)
        claimed, self.to_claim = self.to_claim[: request.max_syncs], []
        return auth_pb2.ClaimSyncsResponse(claimed=claimed)

    async def GetMarketplaceCredentials(self, request: Any, **_: Any) -> Any:
        if self.credentials_error:
            raise aio.AioRpcError(
                self.credentials_error, aio.Metadata(), aio.Metadata(),
                "marketplace: no walmart credentials are saved",
            )  # fmt: skip
        return auth_pb2.GetMarketplaceCredentialsResponse(credentials={"client_id": "c"})

    async def HeartbeatSyncLog(self, request: auth_pb2.HeartbeatSyncLogRequest, **_: Any) -> Any:
        self.heartbeats.append(request.counts)
        if self.heartbeat_error:
            raise rpc_error(self.heartbeat_error)
        return auth_pb2.HeartbeatSyncLogResponse()

    async def FinishSyncLog(self, request: auth_pb2.FinishSyncLogRequest, **_: Any) -> Any:
        if self.finish_errors:
            raise rpc_error(self.finish_errors.pop(0))
        self.finished.append(request)
        return sync_pb2.SyncLog()

    async def ReleaseSyncLog(self, request: auth_pb2.ReleaseSyncLogRequest, **_: Any) -> Any:
        self.released.append(request)
        return auth_pb2.ReleaseSyncLogResponse()


Answer = catalog_pb2.WriteSyncedProductsResponse
# What the catalog makes of a batch: an answer, or an error that ends the call.
BatchOutcome = Answer | BaseException


def all_written(request: catalog_pb2.WriteSyncedProductsRequest) -> BatchOutcome:
    return Answer(written=len(request.products))


class FakeStream:
    """A WriteSyncedProducts call answering each batch with `answer(batch)`, in order, `delay`
    seconds after it was written."""

    def __init__(
        self, answer: Callable[[catalog_pb2.WriteSyncedProductsRequest], BatchOutcome], delay: float
    ) -> None:
        self.answer = answer
        self.delay = delay
        self.written: list[catalog_pb2.Product] = []
        self.batches: list[int] = []
        self.unanswered = 0
        self.most_unanswered = 0
        self.answers: asyncio.Queue[BatchOutcome | object] = asyncio.Queue()
        self.closing = self.ended = self.cancelled = False

    async def write(self, request: catalog_pb2.WriteSyncedProductsRequest) -> None:
        if self.ended:
            raise asyncio.InvalidStateError("the call has ended")
        self.written.extend(request.products)
        self.batches.append(len(request.products))
        self.unanswered += 1
        self.most_unanswered = max(self.most_unanswered, self.unanswered)
        outcome = self.answer(request)
        asyncio.get_running_loop().call_later(self.delay, self._answer, outcome)

    def _answer(self, outcome: BatchOutcome) -> None:
        self.unanswered -= 1
        self.answers.put_nowait(outcome)
        self.ended = self.ended or isinstance(outcome, BaseException)
        if self.closing and not self.unanswered:
            self._end()

    async def done_writing(self) -> None:
        self.closing = True
        if not self.unanswered:
            self._end()

    def _end(self) -> None:
        self.answers.put_nowait(aio.EOF)
        self.ended = True

    async def read(self) -> BatchOutcome | object:
        answer = await self.answers.get()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def cancel(self) -> None:
        # As grpc's: cancelling an ended call does nothing.
        if not self.ended:
            self.cancelled = True
            self.answers.put_nowait(asyncio.CancelledError())


class FakeCatalog:
    def __init__(
        self,
        answer: Callable[[catalog_pb2.WriteSyncedProductsRequest], BatchOutcome] = all_written,
        delay: float = 0.0,
    ) -> None:
        self.stream = FakeStream(answer, delay)
        self.calls = 0

    def WriteSyncedProducts(self, **_: Any) -> FakeStream:
        self.calls += 1
        return self.stream

    async def GetStoredProducts(self, request: Any, **_: Any) -> Any:
        return catalog_pb2.GetStoredProductsResponse()


async def paged(
    pages: Iterable[CatalogPage], pause: float = 0
) -> AsyncGenerator[CatalogPage, None]:
    for page in pages:
        await asyncio.sleep(pause)
        yield page


def worker_for(
    auth: FakeAuth,
    catalog: FakeCatalog,
    pages: AsyncGenerator[CatalogPage, None] | Callable[[], AsyncGenerator[CatalogPage, None]],
    **options: Any,
) -> SyncWorker:
    """A worker whose syncs read `pages` (a factory when it runs several)."""

    def open_catalogue(
        marketplace: str, credentials: Mapping[str, str], org: int, stored: StoredEnrichment
    ) -> AsyncGenerator[CatalogPage, None]:
        return pages() if callable(pages) else pages

    return SyncWorker(
        auth=auth,  # type: ignore[arg-type]
        catalog=catalog,  # type: ignore[arg-type]
        open_catalogue=open_catalogue,
        replica="test-replica",
        max_concurrent=options.pop("max_concurrent", 4),
        claim_interval_seconds=0.01,
        heartbeat_seconds=options.pop("heartbeat_seconds", 0.01),
        **options,
    )


def run_sync(
    auth: FakeAuth, catalog: FakeCatalog, pages: AsyncGenerator[CatalogPage, None], **options: Any
) -> None:
    """Claim the one sync auth hands out and run it to its end."""

    async def scenario() -> None:
        worker = worker_for(auth, catalog, pages, **options)
        claiming = asyncio.create_task(worker.claim_forever())
        try:
            while not auth.claim_requests or worker.running:  # noqa: ASYNC110 - polling stand-ins
                await asyncio.sleep(0.01)
        finally:
            claiming.cancel()
            await worker.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def test_a_value_the_catalog_cannot_hold_fails_that_sku_alone() -> None:
    auth = FakeAuth()
    catalog = FakeCatalog()
    run_sync(auth, catalog, paged([CatalogPage(products=[product("OK"), product("BIG", 2**40)])]))

    assert [p.sku for p in catalog.stream.written] == ["OK"]
    [finished] = auth.finished
    assert finished.status == "partial"
    assert (finished.counts.items_fetched, finished.counts.items_failed) == (2, 1)
    assert "BIG" in finished.error


def test_failures_beyond_those_named_are_counted() -> None:
    named = [catalog_pb2.FailedProduct(sku=f"S{n}", message="bad") for n in range(100)]
    auth = FakeAuth()
    run_sync(
        auth,
        FakeCatalog(lambda _: Answer(failed=named, failed_count=500)),
        paged([CatalogPage(products=[product("A")])]),
    )

    [finished] = auth.finished
    assert finished.counts.items_failed == 500
    assert finished.error.startswith("500 products could not be stored: S0: bad")
    assert finished.error.endswith("and 495 more")


def test_a_lost_lease_stops_the_sync_without_recording_an_outcome() -> None:
    auth = FakeAuth(heartbeat_error=grpc.StatusCode.FAILED_PRECONDITION)
    run_sync(auth, FakeCatalog(), paged([CatalogPage(products=[product("A")])], pause=5))
    assert (auth.finished, auth.released) == ([], [])


def test_recording_the_outcome_is_retried_while_auth_is_unavailable() -> None:
    auth = FakeAuth()
    auth.finish_errors = [grpc.StatusCode.UNAVAILABLE]
    run_sync(auth, FakeCatalog(), paged([CatalogPage(products=[product("A")])]))
    assert [(f.status, f.claim) for f in auth.finished] == [("succeeded", "claim-1")]


def test_products_fill_whole_write_batches_across_marketplace_pages() -> None:
    catalog = FakeCatalog()
    pages = [
        CatalogPage(products=[product(f"S{page}-{n}") for n in range(50)]) for page in range(11)
    ]

    async def scenario() -> None:
        worker = worker_for(FakeAuth(), catalog, paged(pages), write_batch_size=250)
        claiming = asyncio.create_task(worker.claim_forever())
        await asyncio.sleep(0.3)
        claiming.cancel()
        await worker.stop()

    asyncio.run(scenario())
    assert catalog.stream.batches == [250, 250, 50]


def test_a_retryable_marketplace_failure_asks_for_another_attempt() -> None:
    async def failing() -> AsyncGenerator[CatalogPage, None]:
        raise MarketplaceError(
            "walmart", "Walmart kept throttling; try again later", retryable=True
        )
        yield CatalogPage()

    auth = FakeAuth()
    run_sync(auth, FakeCatalog(), failing())
    [finished] = auth.finished
    assert (finished.status, finished.retry) == ("failed", True)
    assert finished.error == "Walmart kept throttling; try again later"


def test_credentials_gone_since_queueing_fail_the_sync_for_good() -> None:
    auth = FakeAuth(credentials_error=grpc.StatusCode.FAILED_PRECONDITION)
    run_sync(auth, FakeCatalog(), paged([]))
    [finished] = auth.finished
    assert (finished.status, finished.retry) == ("failed", False)
    assert finished.error == "no walmart credentials are saved"


def test_a_stopping_worker_hands_its_runs_back() -> None:
    auth = FakeAuth()

    async def scenario() -> None:
        worker = worker_for(auth, FakeCatalog(), paged([CatalogPage()], pause=5))
        claiming = asyncio.create_task(worker.claim_forever())
        while not worker.running:  # noqa: ASYNC110 - polling stand-ins
            await asyncio.sleep(0.01)
        claiming.cancel()
        await worker.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=5))
    assert [(r.sync_id, r.claim) for r in auth.released] == [(7, "claim-1")]
    assert auth.finished == []


class SlowClaimAuth(FakeAuth):
    """Answers a claim only once told to: a claim still in flight when the worker stops."""

    def __init__(self) -> None:
        super().__init__()
        self.claim_asked = asyncio.Event()
        self.answer_claim = asyncio.Event()

    async def ClaimSyncs(self, request: auth_pb2.ClaimSyncsRequest, **kwargs: Any) -> Any:
        self.claim_asked.set()
        await self.answer_claim.wait()
        return await super().ClaimSyncs(request, **kwargs)


def test_a_sync_claimed_while_the_worker_stops_goes_straight_back() -> None:
    auth = SlowClaimAuth()

    async def scenario() -> None:
        worker = worker_for(auth, FakeCatalog(), paged([CatalogPage()], pause=5))
        claiming = asyncio.create_task(worker.claim_forever())
        await auth.claim_asked.wait()
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(0)
        auth.answer_claim.set()
        await stopping
        await asyncio.wait_for(claiming, timeout=5)

    asyncio.run(asyncio.wait_for(scenario(), timeout=5))
    assert [(r.sync_id, r.claim) for r in auth.released] == [(7, "claim-1")]
    assert auth.finished == []


def test_a_run_claimed_just_before_the_worker_stops_is_handed_back() -> None:
    auth = FakeAuth()

    async def scenario() -> None:
        worker = worker_for(auth, FakeCatalog(), paged([CatalogPage()], pause=5))
        # Claimed and its task created, but not yet started: then the stop, in the same turn.
        await worker._claim(1)
        await worker.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=5))
    assert [(r.sync_id, r.claim) for r in auth.released] == [(7, "claim-1")]


def test_a_worker_claims_only_what_it_has_room_for() -> None:
    auth = FakeAuth()
    auth.to_claim = auth.to_claim * 3

    async def scenario() -> int:
        worker = worker_for(
            auth, FakeCatalog(), lambda: paged([CatalogPage()], pause=5), max_concurrent=2
        )
        claiming = asyncio.create_task(worker.claim_forever())
        await asyncio.sleep(0.2)
        running = worker.running
        claiming.cancel()
        await worker.stop()
        return running

    assert asyncio.run(scenario()) == 2
    # Full, it waits for a run to end instead of asking again.
    assert [request.max_syncs for request in auth.claim_requests] == [2]


def pages_of(count: int, size: int) -> list[CatalogPage]:
    return [
        CatalogPage(products=[product(f"P{page}-{n}") for n in range(size)])
        for page in range(count)
    ]


async def failing_after(
    pages: list[CatalogPage], error: MarketplaceError
) -> AsyncGenerator[CatalogPage, None]:
    for page in pages:
        yield page
    raise error


def test_a_catalog_failing_midway_leaves_the_counts_of_the_batches_it_answered() -> None:
    outcomes: list[BatchOutcome] = [
        Answer(written=10),
        Answer(
            written=7,
            unchanged=2,
            failed=[catalog_pb2.FailedProduct(sku="P1-3", message="bad")],
            failed_count=1,
        ),
        rpc_error(grpc.StatusCode.UNAVAILABLE),
    ]
    catalog = FakeCatalog(lambda _: outcomes.pop(0) if outcomes else Answer(written=10))
    auth = FakeAuth()
    run_sync(auth, catalog, paged(pages_of(6, 10)), write_batch_size=10)

    [finished] = auth.finished
    assert (finished.status, finished.error, finished.retry) == (
        "failed",
        "the catalog could not store the products",
        True,
    )
    counts = finished.counts
    assert (counts.items_written, counts.items_unchanged, counts.items_failed) == (17, 2, 1)


def test_a_marketplace_failure_still_counts_the_batches_the_catalog_was_storing() -> None:
    # The catalog answers each batch a while after it came: when the marketplace fails, both
    # batches sent are still unanswered, yet stored.
    catalog = FakeCatalog(delay=0.2)
    auth = FakeAuth()
    failure = MarketplaceError("walmart", "Walmart kept failing; try again later", retryable=True)
    run_sync(auth, catalog, failing_after(pages_of(2, 10), failure), write_batch_size=10)

    [finished] = auth.finished
    assert (finished.status, finished.error) == ("failed", failure.message)
    assert (finished.counts.items_fetched, finished.counts.items_written) == (20, 20)
    assert catalog.stream.closing and not catalog.stream.cancelled


def test_heartbeats_carry_what_the_catalog_has_stored_so_far() -> None:
    auth = FakeAuth()
    catalog = FakeCatalog()
    pages = pages_of(3, 10)

    async def slow_after_the_first_batch() -> AsyncGenerator[CatalogPage, None]:
        yield pages[0]
        assert catalog.calls == 0, "the stream opens with the first full batch"
        yield pages[1]
        await asyncio.sleep(0.3)
        yield pages[2]

    run_sync(auth, catalog, slow_after_the_first_batch(), write_batch_size=20)

    assert any(beat.items_written == 20 for beat in auth.heartbeats), auth.heartbeats
    [finished] = auth.finished
    assert (finished.status, finished.counts.items_written) == ("succeeded", 30)


def test_the_catalogue_size_goes_to_auth_once_the_marketplace_has_said_it() -> None:
    auth = FakeAuth()
    products = [product(f"S{n}") for n in range(30)]

    async def told_with_the_second_page() -> AsyncGenerator[CatalogPage, None]:
        yield CatalogPage(products=products[:10])
        await asyncio.sleep(0.1)
        yield CatalogPage(products=products[10:20], items_total=30)
        await asyncio.sleep(0.1)
        # A page that says nothing more does not make the size unknown again.
        yield CatalogPage(products=products[20:])

    run_sync(auth, FakeCatalog(), told_with_the_second_page())

    assert not auth.heartbeats[0].HasField("items_total"), auth.heartbeats[0]
    assert any(beat.items_total == 30 for beat in auth.heartbeats), auth.heartbeats
    [finished] = auth.finished
    assert (finished.counts.items_fetched, finished.counts.items_total) == (30, 30)


def test_the_catalogue_size_goes_to_auth_at_once_without_waiting_for_the_next_heartbeat() -> None:
    auth = FakeAuth()
    products = [product(f"S{n}") for n in range(20)]

    async def told_then_slow() -> AsyncGenerator[CatalogPage, None]:
        yield CatalogPage(products=products[:10], items_total=20)
        await asyncio.sleep(0.3)
        yield CatalogPage(products=products[10:])

    run_sync(auth, FakeCatalog(), told_then_slow(), heartbeat_seconds=60)

    [beat] = auth.heartbeats
    assert beat.items_total == 20, beat
    [finished] = auth.finished
    assert finished.counts.items_total == 20


def test_a_slow_catalog_has_at_most_two_batches_unanswered() -> None:
    catalog = FakeCatalog(delay=0.05)
    auth = FakeAuth()
    run_sync(auth, catalog, paged(pages_of(8, 10)), write_batch_size=10)

    assert catalog.stream.batches == [10] * 8
    assert catalog.stream.most_unanswered == 2
    [finished] = auth.finished
    assert (finished.status, finished.counts.items_written) == ("succeeded", 80)


def test_a_sku_with_control_characters_is_named_escaped_in_the_error() -> None:
    refused = catalog_pb2.FailedProduct(sku="A\x00B\x85", message="sku must not contain ...")
    auth = FakeAuth()
    catalog = FakeCatalog(lambda _: Answer(written=1, failed=[refused], failed_count=1))
    run_sync(auth, catalog, paged([CatalogPage(products=[product("OK")])]))

    [finished] = auth.finished
    assert finished.status == "partial"
    assert "A\\u0000B\\u0085: sku must not contain" in finished.error
    assert "\x00" not in finished.error


def test_a_stopping_worker_hands_back_the_counts_of_what_was_stored() -> None:
    auth = FakeAuth()
    catalog = FakeCatalog()

    async def three_pages_then_a_long_wait() -> AsyncGenerator[CatalogPage, None]:
        for page in pages_of(3, 10):
            yield page
        await asyncio.sleep(60)

    async def scenario() -> None:
        worker = worker_for(auth, catalog, three_pages_then_a_long_wait(), write_batch_size=10)
        claiming = asyncio.create_task(worker.claim_forever())
        stream = catalog.stream

        def all_answers_read() -> bool:
            return len(stream.batches) == 3 and not stream.unanswered and stream.answers.empty()

        while not all_answers_read():  # noqa: ASYNC110 - polling stand-ins
            await asyncio.sleep(0.01)
        claiming.cancel()
        await worker.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=5))
    [released] = auth.released
    assert released.counts.items_written == 30
    assert catalog.stream.cancelled, "the stream of a stopped sync is ended at once"
