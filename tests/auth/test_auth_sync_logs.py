"""Sync logs: one running sync per organization and marketplace, leases, progress, listing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.auth.credentials import Credentials
from services.auth.models import DueSync, SyncCounts
from services.auth.sync_logs import DEAD_SYNC_ERROR, SyncLogs

from .conftest import Signup

pytestmark = pytest.mark.anyio
WALMART = {"client_id": "walmart-client-id", "client_secret": "walmart-secret-5555"}


async def age(pool: AsyncConnectionPool, sync_id: int, column: str, minutes: int) -> None:
    """Move a log's timestamp into the past, as if time had passed."""
    query = {
        "heartbeat_at": "UPDATE sync_logs SET heartbeat_at = now() - %s WHERE id = %s",
        "started_at": "UPDATE sync_logs SET started_at = now() - %s WHERE id = %s",
    }[column]
    async with pool.connection() as conn:
        await conn.execute(query, (timedelta(minutes=minutes), sync_id))


async def test_one_running_sync_per_marketplace(signup: Signup, sync_logs: SyncLogs) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    log = await sync_logs.start(
        organization_id=org, marketplace="amazon", trigger="manual", started_by=ann.identity.user_id
    )
    assert (log.status, log.trigger, log.started_by, log.finished_at) == (
        "running",
        "manual",
        ann.identity.user_id,
        None,
    )
    with pytest.raises(AlreadyExists, match="amazon sync is already running"):
        await sync_logs.start(
            organization_id=org, marketplace="amazon", trigger="scheduled", started_by=None
        )
    other = await sync_logs.start(
        organization_id=org, marketplace="walmart", trigger="scheduled", started_by=None
    )
    assert other.id != log.id


async def test_concurrent_starts_make_one_sync(signup: Signup, sync_logs: SyncLogs) -> None:
    ann = await signup("ann")
    outcomes = await asyncio.gather(
        *(
            sync_logs.start(
                organization_id=ann.identity.organization_id,
                marketplace="walmart",
                trigger="manual",
                started_by=None,
            )
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert sum(isinstance(o, AlreadyExists) for o in outcomes) == 5


async def test_a_sync_past_its_lease_is_failed_and_replaced(
    signup: Signup, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    stale = await sync_logs.start(
        organization_id=org, marketplace="amazon", trigger="manual", started_by=None
    )
    await age(pool, stale.id, "heartbeat_at", 3)
    fresh = await sync_logs.start(
        organization_id=org, marketplace="amazon", trigger="manual", started_by=None
    )
    dead = await sync_logs.get(organization_id=org, sync_id=stale.id)
    assert (dead.status, dead.error) == ("failed", DEAD_SYNC_ERROR)
    assert dead.finished_at is not None and dead.duration_ms is not None
    with pytest.raises(FailedPrecondition, match="has already ended \\(failed: sync stopped"):
        await sync_logs.heartbeat(organization_id=org, sync_id=stale.id, counts=SyncCounts())
    assert (await sync_logs.get(organization_id=org, sync_id=fresh.id)).status == "running"


async def test_a_heartbeat_keeps_the_lease(
    signup: Signup, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    log = await sync_logs.start(
        organization_id=org, marketplace="amazon", trigger="manual", started_by=None
    )
    await age(pool, log.id, "heartbeat_at", 3)
    await sync_logs.heartbeat(
        organization_id=org, sync_id=log.id, counts=SyncCounts(items_fetched=40, items_written=7)
    )
    with pytest.raises(AlreadyExists):
        await sync_logs.start(
            organization_id=org, marketplace="amazon", trigger="manual", started_by=None
        )
    current = await sync_logs.get(organization_id=org, sync_id=log.id)
    assert (current.items_fetched, current.items_written) == (40, 7)


async def test_finish_records_counts_and_duration(
    signup: Signup, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    log = await sync_logs.start(
        organization_id=org, marketplace="walmart", trigger="manual", started_by=None
    )
    await age(pool, log.id, "started_at", 1)
    counts = SyncCounts(items_fetched=10, items_written=6, items_unchanged=3, items_failed=1)
    done = await sync_logs.finish(
        organization_id=org, sync_id=log.id, status="partial", counts=counts, error="1 failed"
    )
    assert (done.status, done.items_failed, done.error) == ("partial", 1, "1 failed")
    assert done.duration_ms is not None and 60_000 <= done.duration_ms < 70_000
    with pytest.raises(FailedPrecondition, match="already ended \\(partial"):
        await sync_logs.finish(organization_id=org, sync_id=log.id, status="failed", counts=counts)
    with pytest.raises(InvalidArgument, match="status: 'running'"):
        await sync_logs.finish(organization_id=org, sync_id=log.id, status="running", counts=counts)
    with pytest.raises(InvalidArgument, match="items_failed: must not be negative"):
        await sync_logs.heartbeat(
            organization_id=org, sync_id=log.id, counts=SyncCounts(items_failed=-1)
        )


async def test_logs_are_scoped_to_their_organization(signup: Signup, sync_logs: SyncLogs) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    log = await sync_logs.start(
        organization_id=ann.identity.organization_id,
        marketplace="amazon",
        trigger="manual",
        started_by=None,
    )
    bob_org = bob.identity.organization_id
    with pytest.raises(NotFound, match=f"there is no sync {log.id}"):
        await sync_logs.get(organization_id=bob_org, sync_id=log.id)
    with pytest.raises(NotFound):
        await sync_logs.heartbeat(organization_id=bob_org, sync_id=log.id, counts=SyncCounts())
    with pytest.raises(NotFound):
        await sync_logs.finish(
            organization_id=bob_org, sync_id=log.id, status="failed", counts=SyncCounts()
        )
    assert (await sync_logs.list_page(organization_id=bob_org, limit=10)).logs == ()


async def test_list_pages_newest_first(signup: Signup, sync_logs: SyncLogs) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    ids = []
    for _ in range(5):
        log = await sync_logs.start(
            organization_id=org, marketplace="walmart", trigger="scheduled", started_by=None
        )
        await sync_logs.finish(
            organization_id=org, sync_id=log.id, status="succeeded", counts=SyncCounts()
        )
        ids.append(log.id)
    first = await sync_logs.list_page(organization_id=org, limit=2)
    second = await sync_logs.list_page(organization_id=org, limit=2, before_id=first.next_before_id)
    last = await sync_logs.list_page(organization_id=org, limit=2, before_id=second.next_before_id)
    pages = [[log.id for log in page.logs] for page in (first, second, last)]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert last.next_before_id is None
    with pytest.raises(InvalidArgument, match="page_size"):
        await sync_logs.list_page(organization_id=org, limit=0)


async def test_due_for_sync(
    signup: Signup, sync_logs: SyncLogs, credentials: Credentials, pool: AsyncConnectionPool
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    for user in (ann, bob):
        await credentials.save(user.identity, "walmart", WALMART)
    ann_org, bob_org = ann.identity.organization_id, bob.identity.organization_id
    ann_log = await sync_logs.start(
        organization_id=ann_org, marketplace="walmart", trigger="scheduled", started_by=None
    )
    due = await sync_logs.organizations_due_for_sync(timedelta(minutes=30))
    assert DueSync(bob_org, "walmart") in due  # never synced
    assert DueSync(ann_org, "walmart") not in due  # just started
    assert DueSync(ann_org, "amazon") not in due  # no credentials
    await age(pool, ann_log.id, "started_at", 31)
    assert DueSync(ann_org, "walmart") in await sync_logs.organizations_due_for_sync(
        timedelta(minutes=30)
    )


async def test_a_due_sync_starts_once_even_when_the_first_finishes_at_once(
    signup: Signup, sync_logs: SyncLogs
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id

    async def start_and_finish() -> int:
        log = await sync_logs.start(
            organization_id=org,
            marketplace="walmart",
            trigger="scheduled",
            started_by=None,
            not_started_within=timedelta(hours=1),
        )
        await sync_logs.finish(
            organization_id=org, sync_id=log.id, status="succeeded", counts=SyncCounts()
        )
        return log.id

    outcomes = await asyncio.gather(*(start_and_finish() for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert all(isinstance(o, int | FailedPrecondition | AlreadyExists) for o in outcomes)
    with pytest.raises(FailedPrecondition, match="not due"):
        await start_and_finish()


async def test_housekeeping_fails_syncs_past_their_lease_only(
    pool: AsyncConnectionPool, signup: Signup, sync_logs: SyncLogs
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    dead = await sync_logs.start(
        organization_id=org, marketplace="amazon", trigger="manual", started_by=None
    )
    alive = await sync_logs.start(
        organization_id=org, marketplace="walmart", trigger="manual", started_by=None
    )
    await age(pool, dead.id, "heartbeat_at", minutes=5)

    assert await sync_logs.fail_dead() >= 1

    failed = await sync_logs.get(organization_id=org, sync_id=dead.id)
    assert (failed.status, failed.error) == ("failed", DEAD_SYNC_ERROR)
    assert failed.finished_at is not None
    assert (await sync_logs.get(organization_id=org, sync_id=alive.id)).status == "running"
