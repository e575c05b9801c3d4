"""Running syncs: claim queued syncs from auth, pull each marketplace catalogue page by page,
write it to the catalog in full batches while still fetching, heartbeat, record the outcome.

Syncs are durable work queued in auth. Every replica claims as many as it has room for
(`max_concurrent`), runs each as an asyncio task (pacing and backoff are awaited, so a waiting
sync holds no thread), and proves each alive with heartbeats under the run's claim. A run that
fails in a way that may pass is handed back for another attempt; a stopping replica hands its
runs back at once; a replica that dies loses its claims when their lease runs out. Credentials
are read from auth for every run, never kept: deleted or corrected credentials count at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from grpc import aio

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.logs import request_id_bound
from marketsync.marketplaces import validate_marketplace
from marketsync.sync.v1 import sync_pb2
from marketsync.tracing import continued_span, mark_span_failed
from services.sync.marketplaces import (
    CatalogPage,
    Enrichment,
    MarketplaceError,
    MarketplaceProduct,
    StoredEnrichment,
)
from services.sync.metrics import SYNC_ITEMS, SYNC_RUNNING, SYNC_RUNS, SYNC_SECONDS

log = logging.getLogger(__name__)

# How many failed SKUs a log's error names; the rest are counted and logged.
NAMED_FAILURES = 5
# Failed SKUs kept for the service log; beyond these they are only counted.
KEPT_FAILURES = 100
RECORD_ATTEMPTS = 3
CATALOG_FAILURE = "the catalog could not store the products"
CRASH = "the sync stopped on an internal error"

# (marketplace, credentials, organization id, what earlier syncs stored) -> pages
OpenCatalogue = Callable[
    [str, Mapping[str, str], int, StoredEnrichment], AsyncGenerator[CatalogPage, None]
]
STORED_LOOKUP_SECONDS = 30
# Batches sent to the catalog ahead of its answers: one being stored while the next waits, so
# the catalog never idles between batches and a slow catalog holds the sync's reading back.
MAX_UNANSWERED_BATCHES = 2
# How long a failing sync waits for the answers to the batches it already sent.
LAST_ANSWERS_SECONDS = 60
# Shown escaped in a sync's error: PostgreSQL text cannot hold NUL, and a reader cannot see the
# rest of them.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class Progress:
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    # What the marketplace says the catalogue holds, once it has said.
    total: int | None = None
    # Set when it first says: the heartbeat then goes at once, so a watching client's bar can
    # fill and show the time left without waiting out the interval.
    total_told: asyncio.Event = field(default_factory=asyncio.Event)
    # The first failed SKUs with why; a huge catalogue of bad items is only counted.
    failures: list[tuple[str, str]] = field(default_factory=list)
    # DynamoDB units the catalog consumed storing the batches, as it reports them.
    read_units: float = 0.0
    write_units: float = 0.0

    def add_failures(self, failures: Iterable[tuple[str, str]], count: int | None = None) -> None:
        """Record failures; `count` when there were more than the ones named."""
        named = list(failures)
        self.failed += max(count or 0, len(named))
        self.failures.extend(named[: KEPT_FAILURES - len(self.failures)])

    def add_stored(self, answer: catalog_pb2.WriteSyncedProductsResponse) -> None:
        """Count what the catalog made of one batch."""
        self.written += answer.written
        self.unchanged += answer.unchanged
        self.read_units += answer.read_units
        self.write_units += answer.write_units
        self.add_failures(((f.sku, f.message) for f in answer.failed), answer.failed_count)

    def counts(self) -> sync_pb2.SyncCounts:
        return sync_pb2.SyncCounts(
            items_fetched=self.fetched,
            items_written=self.written,
            items_unchanged=self.unchanged,
            items_failed=self.failed,
            capacity_units=sync_pb2.CapacityUnits(read=self.read_units, write=self.write_units),
            items_total=self.total,
        )

    def count_items(self, marketplace: str) -> None:
        """Add this run's products to the metrics."""
        for outcome, count in (
            ("fetched", self.fetched),
            ("written", self.written),
            ("unchanged", self.unchanged),
            ("failed", self.failed),
        ):
            SYNC_ITEMS.labels(marketplace, outcome).inc(count)

    def failure_summary(self) -> str:
        named = "; ".join(
            f"{_escaped(sku)}: {message}" for sku, message in self.failures[:NAMED_FAILURES]
        )
        more = self.failed - min(NAMED_FAILURES, len(self.failures))
        suffix = f"; and {more} more" if more > 0 else ""
        return f"{self.failed} products could not be stored: {named}{suffix}"


def _escaped(sku: str) -> str:
    return _CONTROL_CHARACTER.sub(lambda found: f"\\u{ord(found.group()):04x}", sku)


def product_message(product: MarketplaceProduct) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        sku=product.sku,
        title=product.title,
        description=product.description,
        brand=product.brand,
        category=product.category,
        price=str(product.price),
        currency=product.currency,
        inventory_quantity=product.inventory_quantity,
        image_url=product.image_url,
        asin=product.asin,
        listings=[
            catalog_pb2.Listing(
                marketplace=product.marketplace,
                external_id=product.external_id,
                status=product.status,
            )
        ],
    )


def _messages(products: list[MarketplaceProduct], progress: Progress) -> list[catalog_pb2.Product]:
    """The products as catalog messages; one the catalog's types cannot hold fails alone."""
    messages = []
    for product in products:
        try:
            messages.append(product_message(product))
        except (ValueError, TypeError) as exc:
            progress.add_failures(
                [(product.sku, f"the marketplace gave a value out of range ({exc})")]
            )
    return messages


@dataclass(frozen=True)
class Outcome:
    """How a run ended; `retry` hands a failed sync back for another attempt."""

    status: str
    error: str = ""
    retry: bool = False


class SyncWorker:
    """Claims queued syncs from auth and runs them, at most `max_concurrent` at once."""

    def __init__(
        self,
        *,
        auth: auth_pb2_grpc.AuthInternalServiceAsyncStub,
        catalog: catalog_pb2_grpc.CatalogInternalServiceAsyncStub,
        open_catalogue: OpenCatalogue,
        replica: str,
        max_concurrent: int,
        claim_interval_seconds: float = 2.0,
        heartbeat_seconds: float = 15.0,
        write_batch_size: int = 250,
    ) -> None:
        self._auth = auth
        self._catalog = catalog
        self._open_catalogue = open_catalogue
        self._replica = replica
        self._max_concurrent = max_concurrent
        self._claim_interval = claim_interval_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._write_batch_size = write_batch_size
        self._runs: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    async def enqueue(
        self, *, organization_id: int, marketplace: str, trigger: str, started_by: int = 0
    ) -> sync_pb2.SyncLog:
        """Queue a sync; this replica looks for work at once."""
        validate_marketplace(marketplace)
        sync_log = await self._auth.EnqueueSync(
            auth_pb2.EnqueueSyncRequest(
                organization_id=organization_id,
                marketplace=marketplace,
                trigger=trigger,
                started_by_user_id=started_by,
            ),
            timeout=10,
        )
        self._wake.set()
        log.info(
            "sync queued",
            extra={"sync_id": sync_log.sync_id, "organization_id": organization_id,
                   "marketplace": marketplace, "trigger": trigger},
        )  # fmt: skip
        return sync_log

    async def enqueue_due(self, interval_seconds: int, jitter_seconds: int) -> int:
        """Queue every due sync (see auth's EnqueueDueSyncs); answers how many."""
        # Waits for auth to come up: in the local stack the scheduler's first pass starts with it.
        answer = await self._auth.EnqueueDueSyncs(
            auth_pb2.EnqueueDueSyncsRequest(
                interval_seconds=interval_seconds, jitter_seconds=jitter_seconds
            ),
            timeout=30,
            wait_for_ready=True,
        )
        self._wake.set()
        return len(answer.queued)

    @property
    def running(self) -> int:
        return len(self._runs)

    async def claim_forever(self) -> None:
        """Claim queued syncs whenever there is room: at once after a run ends or a sync is
        queued here, otherwise every claim interval (jittered, so replicas spread out)."""
        while not self._stopping:
            # Cleared before claiming: a wake while the claim is under way (a sync queued
            # here, a run ended) makes the next claim at once instead of an interval later.
            self._wake.clear()
            room = self._max_concurrent - len(self._runs)
            if room > 0:
                await self._claim(room)
            idle = None if len(self._runs) >= self._max_concurrent else self._claim_interval
            pause = None if idle is None else idle * random.uniform(0.75, 1.25)  # noqa: S311
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _claim(self, room: int) -> None:
        try:
            # Waits for auth while it starts (or restarts) instead of failing every interval.
            answer = await self._auth.ClaimSyncs(
                auth_pb2.ClaimSyncsRequest(replica=self._replica, max_syncs=room),
                timeout=10,
                wait_for_ready=True,
            )
        except aio.AioRpcError as exc:
            log.warning("could not claim queued syncs", extra={"detail": exc.details()})
            return
        if self._stopping:
            # Claimed while this replica began to stop: straight back to the queue.
            for claimed in answer.claimed:
                run = _Run(claimed.organization_id, claimed.log.sync_id, claimed.claim)
                await self._hand_back(run, Progress())
            return
        for claimed in answer.claimed:
            task = asyncio.create_task(self._run_for_origin(claimed))
            self._runs.add(task)
            task.add_done_callback(self._run_ended)

    def _run_ended(self, task: asyncio.Task[None]) -> None:
        self._runs.discard(task)
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming and hand every run under way back to the queue, for another replica
        (or, failing that, auth queues them again once their lease runs out)."""
        self._stopping = True
        self._wake.set()
        # Runs claimed a moment ago may not have started: a task cancelled before its first
        # step never runs, so it would hand nothing back. One turn of the loop starts them.
        await asyncio.sleep(0)
        for task in list(self._runs):
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def _run_for_origin(self, claimed: auth_pb2.ClaimedSync) -> None:
        """Run as part of the request that queued the sync: in its trace, with its request id."""
        attributes: dict[str, str | int] = {
            "marketsync.sync_id": claimed.log.sync_id,
            "marketsync.marketplace": claimed.log.marketplace,
        }
        with (
            continued_span("sync run", claimed.traceparent, attributes),
            request_id_bound(claimed.request_id),
        ):
            await self._run(claimed)

    async def _run(self, claimed: auth_pb2.ClaimedSync) -> None:
        run = _Run(claimed.organization_id, claimed.log.sync_id, claimed.claim)
        marketplace = claimed.log.marketplace
        progress = Progress()
        started = time.monotonic()
        lease_lost = asyncio.Event()
        this_run = asyncio.current_task()
        assert this_run is not None  # _run always runs as a task of its own
        heartbeat = asyncio.create_task(self._heartbeat(run, progress, lease_lost, this_run))
        log.info(
            "sync started",
            extra={"sync_id": run.sync_id, "organization_id": run.organization_id,
                   "marketplace": marketplace, "attempt": claimed.log.attempt},
        )  # fmt: skip
        outcome = Outcome("failed", CRASH, retry=True)
        SYNC_RUNNING.inc()
        try:
            outcome = await self._outcome(run, marketplace, progress)
        except asyncio.CancelledError:
            if lease_lost.is_set():
                # Auth has taken the sync back and may have given it to another replica.
                log.warning("sync abandoned: its lease was lost", extra={"sync_id": run.sync_id})
                _count_run(marketplace, "lease_lost", started, progress)
            else:
                # Shielded: a run cancelled by shutdown still hands its sync back.
                await asyncio.shield(self._hand_back(run, progress))
                _count_run(marketplace, "handed_back", started, progress)
            raise
        finally:
            heartbeat.cancel()
            SYNC_RUNNING.dec()
            log.info(
                "sync run ended",
                extra={"sync_id": run.sync_id, "status": outcome.status, "retry": outcome.retry,
                       "fetched": progress.fetched, "written": progress.written,
                       "unchanged": progress.unchanged, "failed": progress.failed,
                       "duration_ms": int((time.monotonic() - started) * 1000)},
            )  # fmt: skip
        recorded = await self._record(run, outcome, progress)
        _count_run(marketplace, recorded, started, progress)
        if outcome.status == "failed":
            mark_span_failed(outcome.error)

    async def _outcome(self, run: _Run, marketplace: str, progress: Progress) -> Outcome:
        """Run the sync; every way it can end, as an outcome to record."""
        try:
            credentials = await self._auth.GetMarketplaceCredentials(
                auth_pb2.GetMarketplaceCredentialsRequest(
                    organization_id=run.organization_id, marketplace=marketplace
                ),
                timeout=10,
            )
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # Deleted, deactivated or unreadable since the sync was queued: say which.
                return Outcome("failed", _without_field_prefix(exc.details() or ""))
            return Outcome("failed", "the stored credentials could not be read", retry=True)
        try:
            await self._pull_into_catalog(
                run.organization_id, marketplace, dict(credentials.credentials), progress
            )
        except MarketplaceError as exc:
            return Outcome("failed", exc.message, retry=exc.retryable)
        except aio.AioRpcError as exc:
            log.warning(
                "catalog write failed", extra={"sync_id": run.sync_id, "detail": exc.details()}
            )
            return Outcome("failed", CATALOG_FAILURE, retry=True)
        except Exception:
            log.exception("sync crashed", extra={"sync_id": run.sync_id})
            return Outcome("failed", CRASH, retry=True)
        if progress.failed:
            return Outcome("partial", progress.failure_summary())
        return Outcome("succeeded")

    async def _record(self, run: _Run, outcome: Outcome, progress: Progress) -> str:
        """Record the outcome; answers how the run ended: its final status, or `retry` when
        auth queued the sync again."""
        for sku, message in progress.failures:
            log.warning(
                "item failed", extra={"sync_id": run.sync_id, "sku": sku, "reason": message}
            )
        recorded = await self._tell_auth(
            run,
            "FinishSyncLog",
            auth_pb2.FinishSyncLogRequest(
                organization_id=run.organization_id,
                sync_id=run.sync_id,
                claim=run.claim,
                status=outcome.status,
                counts=progress.counts(),
                error=outcome.error,
                retry=outcome.retry,
            ),
        )
        if recorded is None:
            return "retry" if outcome.retry else outcome.status
        return "retry" if recorded.status == "queued" else str(recorded.status)

    async def _hand_back(self, run: _Run, progress: Progress) -> None:
        await self._tell_auth(
            run,
            "ReleaseSyncLog",
            auth_pb2.ReleaseSyncLogRequest(
                organization_id=run.organization_id,
                sync_id=run.sync_id,
                claim=run.claim,
                counts=progress.counts(),
            ),
        )
        log.info("sync handed back to the queue", extra={"sync_id": run.sync_id})

    async def _tell_auth(self, run: _Run, method: str, request: Any) -> Any:
        """Record with auth, retrying while it is unavailable; answers auth's answer. If that
        fails (None), the lease runs out and auth queues the sync again."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                return await getattr(self._auth, method)(request, timeout=30)
            except aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt + 1 == RECORD_ATTEMPTS:
                    log.error(
                        "could not record the sync run", extra={"sync_id": run.sync_id,
                        "call": method, "detail": exc.details()},
                    )  # fmt: skip
                    return None
                await asyncio.sleep(2**attempt)
        return None

    async def _pull_into_catalog(
        self,
        organization_id: int,
        marketplace: str,
        credentials: Mapping[str, str],
        progress: Progress,
    ) -> None:
        writer = _CatalogWriter(self._catalog, organization_id, marketplace, progress)
        batch: list[catalog_pb2.Product] = []
        pages = self._open_catalogue(
            marketplace, credentials, organization_id, self._stored_enrichment(organization_id)
        )
        try:
            async with contextlib.aclosing(pages):
                async for page in pages:
                    if page.items_total is not None:
                        progress.total = page.items_total
                        progress.total_told.set()
                    progress.fetched += len(page.products) + len(page.skipped)
                    progress.add_failures((item.sku, item.message) for item in page.skipped)
                    batch.extend(_messages(page.products, progress))
                    # Full batches across marketplace pages: fewer, fuller catalog writes.
                    while len(batch) >= self._write_batch_size:
                        await writer.write(batch[: self._write_batch_size])
                        del batch[: self._write_batch_size]
            if batch:
                await writer.write(batch)
        except Exception:
            # The batches already sent are being stored all the same: count them before the
            # sync fails, unless the catalog is what failed (or takes too long to say).
            with contextlib.suppress(aio.AioRpcError, TimeoutError):
                async with asyncio.timeout(LAST_ANSWERS_SECONDS):
                    await writer.close()
            raise
        else:
            await writer.close()
        finally:
            # A sync cancelled mid-stream ends its call at once; a closed call is left alone.
            writer.cancel()

    def _stored_enrichment(self, organization_id: int) -> StoredEnrichment:
        async def stored(skus: list[str]) -> dict[str, tuple[str, Enrichment]]:
            try:
                answer = await self._catalog.GetStoredProducts(
                    catalog_pb2.GetStoredProductsRequest(
                        organization_id=organization_id, skus=skus
                    ),
                    timeout=STORED_LOOKUP_SECONDS,
                )
            except aio.AioRpcError as exc:
                # Only a saving: without it these products are enriched from Amazon again.
                log.warning("stored products could not be read", extra={"detail": exc.details()})
                return {}
            return {
                p.sku: (p.asin, Enrichment(p.brand, p.category, p.image_url))
                for p in answer.products
            }

        return stored

    async def _heartbeat(
        self, run: _Run, progress: Progress, lease_lost: asyncio.Event, task: asyncio.Task[None]
    ) -> None:
        """Extend the lease every few seconds, and once at once when the catalogue's size is
        first known; cancel the run if auth has taken the sync back."""
        total_sent = False
        while True:
            if total_sent:
                await asyncio.sleep(self._heartbeat_seconds)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.total_told.wait(), self._heartbeat_seconds)
                total_sent = progress.total is not None
            try:
                await self._auth.HeartbeatSyncLog(
                    auth_pb2.HeartbeatSyncLogRequest(
                        organization_id=run.organization_id,
                        sync_id=run.sync_id,
                        claim=run.claim,
                        counts=progress.counts(),
                    ),
                    timeout=10,
                )
            except aio.AioRpcError as exc:
                log.warning(
                    "heartbeat failed", extra={"sync_id": run.sync_id, "detail": exc.details()}
                )
                if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    lease_lost.set()
                    task.cancel()
                    return


@dataclass(frozen=True)
class _Run:
    organization_id: int
    sync_id: int
    claim: str


class _CatalogWriter:
    """The catalog write stream, opened when the first batch is ready: a sync that spends
    minutes reading a marketplace before its first full batch holds no idle stream.

    The catalog answers each batch once it is stored; the answers go into the sync's progress
    as they arrive, so heartbeats carry what is stored so far and a sync that fails midway
    still records it. At most MAX_UNANSWERED_BATCHES are sent ahead of their answers.
    """

    def __init__(
        self,
        catalog: catalog_pb2_grpc.CatalogInternalServiceAsyncStub,
        organization_id: int,
        marketplace: str,
        progress: Progress,
    ) -> None:
        self._catalog = catalog
        self._organization_id = organization_id
        self._marketplace = marketplace
        self._progress = progress
        self._call: Any = None
        self._answers: asyncio.Task[None] | None = None
        self._failure: aio.AioRpcError | None = None
        self._room = asyncio.Semaphore(MAX_UNANSWERED_BATCHES)

    async def write(self, products: list[catalog_pb2.Product]) -> None:
        await self._room.acquire()
        if self._call is None:
            # No deadline: a first Amazon sync of a large catalogue takes hours (Catalog Items
            # is paced at 40 products/s); keepalive finds a dead connection.
            self._call = self._catalog.WriteSyncedProducts()
            self._answers = asyncio.create_task(self._read_answers(self._call))
        elif self._ended():
            self._raise_ended()
        request = catalog_pb2.WriteSyncedProductsRequest(
            organization_id=self._organization_id,
            marketplace=self._marketplace,
            products=products,
        )
        try:
            await self._call.write(request)
        except asyncio.InvalidStateError:
            await self._last_answer()
            self._raise_ended()

    async def close(self) -> None:
        """Finish the stream and wait for the answers still due; raise the catalog's error."""
        if self._call is None:
            return
        await self._call.done_writing()
        await self._last_answer()
        if self._failure is not None:
            raise self._failure

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()

    async def _read_answers(self, call: Any) -> None:
        try:
            while (answer := await call.read()) is not aio.EOF:
                self._progress.add_stored(answer)
                self._room.release()
        except aio.AioRpcError as exc:
            self._failure = exc
        finally:
            # Wakes a write waiting for room: no more answers will come to make it.
            self._room.release()

    async def _last_answer(self) -> None:
        """Wait until no answer can come, without raising what ended the call."""
        if self._answers is not None:
            await asyncio.wait([self._answers])

    def _ended(self) -> bool:
        return self._answers is not None and self._answers.done()

    def _raise_ended(self) -> NoReturn:
        """The catalog ended the call while batches were still coming: raise its status."""
        if self._failure is not None:
            raise self._failure
        raise RuntimeError("the catalog ended the write stream before the last batch")


def _count_run(marketplace: str, ended_as: str, started: float, progress: Progress) -> None:
    SYNC_RUNS.labels(marketplace, ended_as).inc()
    SYNC_SECONDS.labels(marketplace, ended_as).observe(time.monotonic() - started)
    progress.count_items(marketplace)


def _without_field_prefix(details: str) -> str:
    """Auth's message names the request field ("marketplace: ..."); the seller needs the rest."""
    field_name, separator, rest = details.partition(": ")
    return rest if separator and field_name.isidentifier() else details
