"""Running syncs: open a log with auth, pull a marketplace page by page, stream the products to
the catalog while still fetching, heartbeat, and close the log with the outcome.

A sync runs as a background task of the replica that started it; its log's heartbeat is its
lease (auth takes a log without a heartbeat for longer than the lease for dead). Credentials are
read from auth for every sync, never kept: deleted or corrected credentials count at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.errors import InvalidArgument
from marketsync.marketplaces import MARKETPLACES
from marketsync.sync.v1 import sync_pb2
from services.sync.marketplaces import (
    CatalogPage,
    Enrichment,
    MarketplaceError,
    MarketplaceProduct,
    StoredEnrichment,
    pages_in_thread,
)

log = logging.getLogger(__name__)

# How many failed SKUs a log's error names; the rest are counted and logged.
NAMED_FAILURES = 5
# Failed SKUs kept for the service log; beyond these they are only counted.
KEPT_FAILURES = 100
FINISH_ATTEMPTS = 3

# (marketplace, credentials, organization id, what earlier syncs stored) -> pages
OpenCatalogue = Callable[[str, Mapping[str, str], int, StoredEnrichment], Iterator[CatalogPage]]
STORED_LOOKUP_SECONDS = 30


def validate_marketplace(marketplace: str) -> None:
    if marketplace not in MARKETPLACES:
        raise InvalidArgument(f"marketplace: must be amazon or walmart, got {marketplace!r}")


@dataclass
class Progress:
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    # The first failed SKUs with why; a huge catalogue of bad items is only counted.
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add_failures(self, failures: Iterable[tuple[str, str]], count: int | None = None) -> None:
        """Record failures; `count` when there were more than the ones named."""
        named = list(failures)
        self.failed += max(count or 0, len(named))
        self.failures.extend(named[: KEPT_FAILURES - len(self.failures)])

    def counts(self) -> sync_pb2.SyncCounts:
        return sync_pb2.SyncCounts(
            items_fetched=self.fetched,
            items_written=self.written,
            items_unchanged=self.unchanged,
            items_failed=self.failed,
        )

    def failure_summary(self) -> str:
        named = "; ".join(f"{sku}: {message}" for sku, message in self.failures[:NAMED_FAILURES])
        more = self.failed - min(NAMED_FAILURES, len(self.failures))
        suffix = f"; and {more} more" if more > 0 else ""
        return f"{self.failed} products could not be stored: {named}{suffix}"


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


class SyncRunner:
    def __init__(
        self,
        *,
        auth: auth_pb2_grpc.AuthInternalServiceStub,
        catalog: catalog_pb2_grpc.CatalogInternalServiceStub,
        open_catalogue: OpenCatalogue,
        heartbeat_seconds: float = 15.0,
        write_batch_size: int = 250,
    ) -> None:
        self._auth = auth
        self._catalog = catalog
        self._open_catalogue = open_catalogue
        self._heartbeat_seconds = heartbeat_seconds
        self._write_batch_size = write_batch_size
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self,
        *,
        organization_id: int,
        marketplace: str,
        trigger: str,
        started_by: int = 0,
        not_started_within_seconds: int = 0,
    ) -> sync_pb2.SyncLog:
        """Open the sync's log and run it in the background; answers the running log."""
        validate_marketplace(marketplace)
        stored = await self._auth.GetMarketplaceCredentials(
            auth_pb2.GetMarketplaceCredentialsRequest(
                organization_id=organization_id, marketplace=marketplace
            ),
            timeout=10,
        )
        credentials = dict(stored.credentials)
        sync_log = await self._auth.StartSyncLog(
            auth_pb2.StartSyncLogRequest(
                organization_id=organization_id,
                marketplace=marketplace,
                trigger=trigger,
                started_by_user_id=started_by,
                not_started_within_seconds=not_started_within_seconds,
            ),
            timeout=10,
        )
        self._spawn(self._run(organization_id, marketplace, sync_log.sync_id, credentials))
        log.info(
            "sync started",
            extra={"sync_id": sync_log.sync_id, "organization_id": organization_id,
                   "marketplace": marketplace, "trigger": trigger},
        )  # fmt: skip
        return sync_log

    async def start_due(self, interval_seconds: int, jitter_seconds: int) -> list[sync_pb2.DueSync]:
        """Schedule every due sync after a random delay within the jitter window."""
        # Waits for auth to come up: in the local stack the scheduler's first pass starts with it.
        answer = await self._auth.ListDueSyncs(
            auth_pb2.ListDueSyncsRequest(interval_seconds=interval_seconds),
            timeout=30,
            wait_for_ready=True,
        )
        for due in answer.due:
            delay = random.uniform(0, jitter_seconds)  # noqa: S311 - spreading load, not secrecy
            self._spawn(self._start_later(due, delay, interval_seconds))
        return list(answer.due)

    async def _start_later(self, due: sync_pb2.DueSync, delay: float, interval: int) -> None:
        await asyncio.sleep(delay)
        try:
            await self.start(
                organization_id=due.organization_id,
                marketplace=due.marketplace,
                trigger="scheduled",
                not_started_within_seconds=interval,
            )
        except aio.AioRpcError as exc:
            # Another replica started it first, or its credentials went away: nothing to do.
            log.info(
                "scheduled sync not started",
                extra={"organization_id": due.organization_id, "marketplace": due.marketplace,
                       "reason": exc.details()},
            )  # fmt: skip

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel running syncs; each records that it was interrupted (or, failing that, auth
        fails it once its lease runs out)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(
        self, organization_id: int, marketplace: str, sync_id: int, credentials: Mapping[str, str]
    ) -> None:
        progress = Progress()
        started = time.monotonic()
        lease_lost = asyncio.Event()
        this_sync = asyncio.current_task()
        assert this_sync is not None  # _run always runs as a task of its own
        heartbeat = asyncio.create_task(
            self._heartbeat(organization_id, sync_id, progress, lease_lost, this_sync)
        )
        status, error = "failed", ""
        try:
            await self._pull_into_catalog(organization_id, marketplace, credentials, progress)
            status = "partial" if progress.failed else "succeeded"
            error = progress.failure_summary() if progress.failed else ""
        except MarketplaceError as exc:
            error = exc.message
        except aio.AioRpcError as exc:
            log.warning("catalog write failed", extra={"sync_id": sync_id, "detail": exc.details()})
            error = "the catalog could not store the products; start the sync again"
        except asyncio.CancelledError:
            if lease_lost.is_set():
                # Auth already failed this log and may have started another sync: stop quietly.
                log.warning("sync abandoned: its lease was lost", extra={"sync_id": sync_id})
                return
            error = "the sync was interrupted because the sync service stopped; start it again"
            raise
        except Exception:
            log.exception("sync crashed", extra={"sync_id": sync_id})
            error = "the sync stopped on an internal error; start it again"
        finally:
            heartbeat.cancel()
            if not lease_lost.is_set():
                # Shielded: a sync cancelled by shutdown still records why it ended.
                await asyncio.shield(
                    self._finish(organization_id, marketplace, sync_id, status, error, progress)
                )
            log.info(
                "sync finished",
                extra={"sync_id": sync_id, "status": status, "fetched": progress.fetched,
                       "written": progress.written, "unchanged": progress.unchanged,
                       "failed": progress.failed,
                       "duration_ms": int((time.monotonic() - started) * 1000)},
            )  # fmt: skip

    async def _finish(
        self,
        organization_id: int,
        marketplace: str,
        sync_id: int,
        status: str,
        error: str,
        progress: Progress,
    ) -> None:
        for sku, message in progress.failures:
            log.warning("item failed", extra={"sync_id": sync_id, "sku": sku, "reason": message})
        request = auth_pb2.FinishSyncLogRequest(
            organization_id=organization_id,
            sync_id=sync_id,
            status=status,
            counts=progress.counts(),
            error=error,
        )
        for attempt in range(FINISH_ATTEMPTS):
            try:
                await self._auth.FinishSyncLog(request, timeout=30)
                return
            except aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt + 1 == FINISH_ATTEMPTS:
                    # Auth fails the log once its lease runs out; a new sync can start then.
                    log.error("could not record the sync's outcome", extra={"sync_id": sync_id,
                              "status": status, "detail": exc.details()})  # fmt: skip
                    return
                await asyncio.sleep(2**attempt)

    async def _pull_into_catalog(
        self,
        organization_id: int,
        marketplace: str,
        credentials: Mapping[str, str],
        progress: Progress,
    ) -> None:
        pages = self._open_catalogue(
            marketplace, credentials, organization_id, self._stored_enrichment(organization_id)
        )
        # No deadline: a first Amazon sync of a large catalogue takes hours (Catalog Items is
        # paced at 40 products/s); keepalive finds a dead connection.
        call = self._catalog.WriteSyncedProducts()
        try:
            async for page in pages_in_thread(pages):
                progress.fetched += len(page.products) + len(page.skipped)
                progress.add_failures((item.sku, item.message) for item in page.skipped)
                for start in range(0, len(page.products), self._write_batch_size):
                    batch = page.products[start : start + self._write_batch_size]
                    request = catalog_pb2.WriteSyncedProductsRequest(
                        organization_id=organization_id,
                        marketplace=marketplace,
                        products=_messages(batch, progress),
                    )
                    try:
                        await call.write(request)
                    except asyncio.InvalidStateError:
                        await call  # the catalog ended the call: raise its status instead
                        raise
            await call.done_writing()
            result = await call
        except BaseException:
            call.cancel()
            raise
        progress.written = result.written
        progress.unchanged = result.unchanged
        progress.add_failures(((f.sku, f.message) for f in result.failed), result.failed_count)

    def _stored_enrichment(self, organization_id: int) -> StoredEnrichment:
        """A lookup the marketplace client calls from its worker thread; the catalog answers
        on this event loop."""
        loop = asyncio.get_running_loop()

        async def stored(skus: list[str]) -> dict[str, tuple[str, Enrichment]]:
            answer = await self._catalog.GetStoredProducts(
                catalog_pb2.GetStoredProductsRequest(organization_id=organization_id, skus=skus),
                timeout=STORED_LOOKUP_SECONDS,
            )
            return {
                p.sku: (p.asin, Enrichment(p.brand, p.category, p.image_url))
                for p in answer.products
            }

        def lookup(skus: list[str]) -> dict[str, tuple[str, Enrichment]]:
            future = asyncio.run_coroutine_threadsafe(stored(skus), loop)
            try:
                return future.result(STORED_LOOKUP_SECONDS)
            except (aio.AioRpcError, TimeoutError) as exc:
                # Only a saving: without it these products are enriched from Amazon again.
                log.warning("stored products could not be read", extra={"detail": str(exc)})
                return {}

        return lookup

    async def _heartbeat(
        self,
        organization_id: int,
        sync_id: int,
        progress: Progress,
        lease_lost: asyncio.Event,
        sync: asyncio.Task[None],
    ) -> None:
        """Extend the lease every few seconds; cancel the sync if auth says it has ended."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await self._auth.HeartbeatSyncLog(
                    auth_pb2.HeartbeatSyncLogRequest(
                        organization_id=organization_id, sync_id=sync_id, counts=progress.counts()
                    ),
                    timeout=10,
                )
            except aio.AioRpcError as exc:
                log.warning("heartbeat failed", extra={"sync_id": sync_id, "detail": exc.details()})
                if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    lease_lost.set()
                    sync.cancel()
                    return
