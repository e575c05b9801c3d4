"""Sync logs, for the sync service: one running sync per organization and marketplace.

A running sync proves it is alive with heartbeats. One whose last heartbeat is older than the
lease is dead (its worker crashed or hung): the next start marks it failed and takes its place,
in the same transaction, so two starters racing for a dead sync's place get one new sync.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.auth import store
from services.auth.credentials import validate_marketplace
from services.auth.models import DueSync, SyncCounts, SyncLog, SyncLogPage

DEFAULT_LEASE = timedelta(minutes=2)
DEAD_SYNC_ERROR = "sync stopped responding"
TRIGGERS = ("manual", "scheduled")
FINAL_STATUSES = ("succeeded", "partial", "failed")


class SyncLogs:
    def __init__(self, pool: AsyncConnectionPool, *, lease: timedelta = DEFAULT_LEASE) -> None:
        self._pool = pool
        self._lease = lease

    async def start(
        self,
        *,
        organization_id: int,
        marketplace: str,
        trigger: str,
        started_by: int | None,
        not_started_within: timedelta | None = None,
    ) -> SyncLog:
        """Open a running log. With `not_started_within`, only if no sync of this organization
        and marketplace started within it (FailedPrecondition otherwise): schedulers on several
        replicas then start each due sync once."""
        validate_marketplace(marketplace)
        if trigger not in TRIGGERS:
            raise InvalidArgument(f"trigger: {trigger!r} is not one of {', '.join(TRIGGERS)}")
        async with self._pool.connection() as conn, conn.transaction():
            await store.lock_sync_slot(
                conn, organization_id=organization_id, marketplace=marketplace
            )
            if not_started_within is not None and await store.started_within(
                conn,
                organization_id=organization_id,
                marketplace=marketplace,
                within=not_started_within,
            ):
                raise FailedPrecondition(
                    f"marketplace: a {marketplace} sync started less than"
                    f" {not_started_within} ago; it is not due"
                )
            await store.fail_dead_sync(
                conn,
                organization_id=organization_id,
                marketplace=marketplace,
                lease=self._lease,
                error=DEAD_SYNC_ERROR,
            )
            log = await store.insert_running_sync(
                conn,
                organization_id=organization_id,
                marketplace=marketplace,
                trigger=trigger,
                started_by=started_by,
            )
        if log is None:
            raise AlreadyExists(
                f"marketplace: a {marketplace} sync is already running for this organization"
            )
        return log

    async def fail_dead(self) -> int:
        """Fail every running sync past its lease, so none shows `running` for long after its
        worker died; answers how many."""
        async with self._pool.connection() as conn:
            return await store.fail_dead_syncs(conn, lease=self._lease, error=DEAD_SYNC_ERROR)

    async def heartbeat(self, *, organization_id: int, sync_id: int, counts: SyncCounts) -> None:
        """Record progress; FailedPrecondition if the sync has ended (e.g. was declared dead)."""
        _validate_counts(counts)
        async with self._pool.connection() as conn:
            if await store.heartbeat_sync(
                conn, organization_id=organization_id, sync_id=sync_id, counts=counts
            ):
                return
            await _raise_not_running(conn, organization_id, sync_id)

    async def finish(
        self,
        *,
        organization_id: int,
        sync_id: int,
        status: str,
        counts: SyncCounts,
        error: str | None = None,
    ) -> SyncLog:
        if status not in FINAL_STATUSES:
            raise InvalidArgument(f"status: {status!r} is not one of {', '.join(FINAL_STATUSES)}")
        _validate_counts(counts)
        async with self._pool.connection() as conn:
            log = await store.finish_sync(
                conn,
                organization_id=organization_id,
                sync_id=sync_id,
                status=status,
                counts=counts,
                error=error,
            )
            if log is None:
                await _raise_not_running(conn, organization_id, sync_id)
        return log

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

    async def organizations_due_for_sync(self, interval: timedelta) -> tuple[DueSync, ...]:
        """Active credentials whose last sync started more than `interval` ago, or never."""
        async with self._pool.connection() as conn:
            return tuple(await store.due_syncs(conn, interval))


async def _raise_not_running(conn: AsyncConnection, organization_id: int, sync_id: int) -> NoReturn:
    log = await store.get_sync(conn, organization_id=organization_id, sync_id=sync_id)
    if log is None:
        raise NotFound(f"sync_id: there is no sync {sync_id}")
    raise FailedPrecondition(
        f"sync_id: sync {sync_id} has already ended ({log.status}"
        + (f": {log.error})" if log.error else ")")
    )


def _validate_counts(counts: SyncCounts) -> None:
    for name in ("items_fetched", "items_written", "items_unchanged", "items_failed"):
        if getattr(counts, name) < 0:
            raise InvalidArgument(f"{name}: must not be negative")
