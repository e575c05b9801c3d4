"""Sync logs, for the sync service: the durable queue of syncs and their outcomes.

A start queues a log (one queued or running sync per organization and marketplace). Sync
replicas claim queued logs, oldest first, each as many as it has room for; a claimed log is
`running` under a claim id, and its replica proves it alive with heartbeats. A run whose
heartbeat is older than the lease (its replica died) goes back to the queue, as does one that
failed in a way that may pass; after `max_attempts` runs it fails for good with the last reason.
A replica that stops hands its runs back at once, which does not count as an attempt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from marketsync.marketplaces import validate_marketplace
from services.auth import store
from services.auth.credentials import usable
from services.auth.models import (
    NO_ORIGIN,
    ClaimedSync,
    DueSync,
    RequestOrigin,
    SyncCounts,
    SyncLog,
    SyncLogPage,
)

DEAD_SYNC_ERROR = "the sync service running it stopped responding"
TRIGGERS = ("manual", "scheduled")
FINAL_STATUSES = ("succeeded", "partial", "failed")


@dataclass(frozen=True)
class QueuePolicy:
    # A running sync whose heartbeat is older than this is taken for dead.
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 3
    # Attempt n waits backoff * 2**(n-1) before the next.
    retry_backoff: timedelta = timedelta(seconds=30)

    @property
    def retry(self) -> store.RetryPolicy:
        return store.RetryPolicy(self.max_attempts, self.retry_backoff)


class SyncLogs:
    def __init__(self, pool: AsyncConnectionPool, policy: QueuePolicy = QueuePolicy()) -> None:
        self._pool = pool
        self._policy = policy

    async def enqueue(
        self,
        *,
        organization_id: int,
        marketplace: str,
        trigger: str,
        started_by: int | None,
        origin: RequestOrigin = NO_ORIGIN,
    ) -> SyncLog:
        """Queue a sync; FailedPrecondition without active credentials, AlreadyExists while a
        sync of that marketplace is queued or running for the organization. Its run will carry
        `origin`, the request that queued it."""
        validate_marketplace(marketplace)
        if trigger not in TRIGGERS:
            raise InvalidArgument(f"trigger: {trigger!r} is not one of {', '.join(TRIGGERS)}")
        async with self._pool.connection() as conn:
            usable(
                marketplace,
                await store.get_credentials(
                    conn, organization_id=organization_id, marketplace=marketplace
                ),
            )
            log = await store.insert_queued_sync(
                conn,
                organization_id=organization_id,
                marketplace=marketplace,
                trigger=trigger,
                started_by=started_by,
                origin=origin,
            )
        if log is None:
            raise AlreadyExists(
                f"marketplace: a {marketplace} sync is already queued or running for this"
                " organization"
            )
        return log

    async def enqueue_due(self, *, interval: timedelta, jitter: timedelta) -> tuple[DueSync, ...]:
        """Queue the syncs that are due (see `store.enqueue_due_syncs`); safe to run on several
        schedulers at once."""
        if interval <= timedelta(0) or jitter < timedelta(0):
            raise InvalidArgument(
                "interval_seconds: must be positive, and jitter_seconds not negative"
            )
        async with self._pool.connection() as conn:
            return tuple(await store.enqueue_due_syncs(conn, interval=interval, jitter=jitter))

    async def claim(self, *, replica: str, max_syncs: int) -> tuple[ClaimedSync, ...]:
        """Up to `max_syncs` queued syncs that may run now, oldest first, for this replica."""
        if not replica:
            raise InvalidArgument("replica: must name the claiming replica")
        if max_syncs < 1:
            raise InvalidArgument("max_syncs: must be at least 1")
        async with self._pool.connection() as conn, conn.transaction():
            await self._requeue_expired(conn)
            claimed = await store.claim_syncs(conn, replica=replica, limit=max_syncs)
        return tuple(ClaimedSync(log, claim, origin) for log, claim, origin in claimed)

    async def requeue_expired(self) -> int:
        """Put runs whose lease ran out back in the queue (or fail them after their last
        attempt), so none shows `running` for long after its replica died; answers how many."""
        async with self._pool.connection() as conn:
            return await self._requeue_expired(conn)

    async def _requeue_expired(self, conn: AsyncConnection) -> int:
        return await store.requeue_expired(
            conn, lease=self._policy.lease, policy=self._policy.retry, error=DEAD_SYNC_ERROR
        )

    async def heartbeat(
        self, *, organization_id: int, sync_id: int, claim: str, counts: SyncCounts
    ) -> None:
        """Record progress; FailedPrecondition if this run no longer holds the sync."""
        _validate_counts(counts)
        async with self._pool.connection() as conn:
            if await store.heartbeat_sync(
                conn, organization_id=organization_id, sync_id=sync_id, claim=claim, counts=counts
            ):
                return
            await _raise_not_held(conn, organization_id, sync_id)

    async def finish(
        self,
        *,
        organization_id: int,
        sync_id: int,
        claim: str,
        status: str,
        counts: SyncCounts,
        error: str | None = None,
        retry: bool = False,
    ) -> SyncLog:
        """Record a run's outcome. A `failed` run with `retry` goes back to the queue unless it
        was the last attempt."""
        if status not in FINAL_STATUSES:
            raise InvalidArgument(f"status: {status!r} is not one of {', '.join(FINAL_STATUSES)}")
        if retry and status != "failed":
            raise InvalidArgument("retry: only a failed run is retried")
        _validate_counts(counts)
        async with self._pool.connection() as conn:
            if retry:
                log = await store.retry_sync(
                    conn,
                    organization_id=organization_id,
                    sync_id=sync_id,
                    claim=claim,
                    counts=counts,
                    error=error or "",
                    policy=self._policy.retry,
                )
            else:
                log = await store.finish_sync(
                    conn,
                    organization_id=organization_id,
                    sync_id=sync_id,
                    claim=claim,
                    status=status,
                    counts=counts,
                    error=error,
                )
            if log is None:
                await _raise_not_held(conn, organization_id, sync_id)
        return log

    async def release(
        self, *, organization_id: int, sync_id: int, claim: str, counts: SyncCounts
    ) -> None:
        """Hand a run back to the queue at once, for another replica."""
        _validate_counts(counts)
        async with self._pool.connection() as conn:
            if not await store.release_sync(
                conn, organization_id=organization_id, sync_id=sync_id, claim=claim, counts=counts
            ):
                await _raise_not_held(conn, organization_id, sync_id)

    async def get(self, *, organization_id: int, sync_id: int) -> SyncLog:
        async with self._pool.connection() as conn:
            log = await store.get_sync(conn, organization_id=organization_id, sync_id=sync_id)
        if log is None:
            raise NotFound(f"sync_id: there is no sync {sync_id}")
        return log

    async def list_page(
        self, *, organization_id: int, limit: int, before_id: int | None = None
    ) -> SyncLogPage:
        """Newest first, `limit` logs with ids below `before_id` (all when None)."""
        if limit < 1:
            raise InvalidArgument("page_size: must be at least 1")
        async with self._pool.connection() as conn:
            logs = await store.list_syncs(
                conn, organization_id=organization_id, limit=limit + 1, before_id=before_id
            )
        page = tuple(logs[:limit])
        return SyncLogPage(page, page[-1].id if len(logs) > limit else None)


async def _raise_not_held(conn: AsyncConnection, organization_id: int, sync_id: int) -> NoReturn:
    log = await store.get_sync(conn, organization_id=organization_id, sync_id=sync_id)
    if log is None:
        raise NotFound(f"sync_id: there is no sync {sync_id}")
    state = "has ended" if log.status in FINAL_STATUSES else "is no longer held by this run"
    raise FailedPrecondition(
        f"sync_id: sync {sync_id} {state} ({log.status}" + (f": {log.error})" if log.error else ")")
    )


def _validate_counts(counts: SyncCounts) -> None:
    for field in dataclasses.fields(counts):
        value = getattr(counts, field.name)
        # `not >=` refuses NaN units too; None is a total not known yet.
        if value is not None and not value >= 0:
            raise InvalidArgument(f"{field.name}: must not be negative")
