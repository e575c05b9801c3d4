"""Sync logs: the queue, claims and leases, retries, progress, listing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypedDict

import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.auth.credentials import Credentials
from services.auth.models import ClaimedSync, DueSync, SyncCounts
from services.auth.sync_logs import DEAD_SYNC_ERROR, QueuePolicy, SyncLogs

from .conftest import Signup


class Held(TypedDict):
    """What names a claimed run to heartbeat and finish."""

    organization_id: int
    sync_id: int
    claim: str


pytestmark = pytest.mark.anyio
WALMART = {"client_id": "walmart-client-id", "client_secret": "walmart-secret-5555"}


async def age(pool: AsyncConnectionPool, sync_id: int, column: str, minutes: float) -> None:
    """Move a log's timestamp into the past, as if time had passed."""
    query = {
        "heartbeat_at": "UPDATE sync_logs SET heartbeat_at = now() - %s WHERE id = %s",
        "started_at": "UPDATE sync_logs SET started_at = now() - %s WHERE id = %s",
        "queued_at": "UPDATE sync_logs SET queued_at = now() - %s WHERE id = %s",
        "run_after": "UPDATE sync_logs SET run_after = now() - %s WHERE id = %s",
    }[column]
    async with pool.connection() as conn:
        await conn.execute(query, (timedelta(minutes=minutes), sync_id))


@pytest.fixture
async def seller(signup: Signup, credentials: Credentials) -> int:
    """An organization with Amazon and Walmart credentials saved."""
    ann = await signup("ann")
    await credentials.save(ann.identity, "walmart", WALMART)
    await credentials.save(ann.identity, "amazon", AMAZON)
    return ann.identity.organization_id


AMAZON = {
    "refresh_token": "Atzr|refresh-token-1234",
    "lwa_app_id": "amzn1.application-oa2-client.app",
    "lwa_client_secret": "lwa-secret-9999",
    "seller_id": "A1SELLER",
}


async def queue(sync_logs: SyncLogs, org: int, marketplace: str = "walmart") -> int:
    log = await sync_logs.enqueue(
        organization_id=org, marketplace=marketplace, trigger="manual", started_by=None
    )
    return log.id


async def claim_own(sync_logs: SyncLogs, org: int, replica: str = "r1") -> list[ClaimedSync]:
    """Claims everything that may run (the database is shared), answers this org's claims."""
    claimed = await sync_logs.claim(replica=replica, max_syncs=1000)
    return [c for c in claimed if c.log.organization_id == org]


async def test_a_start_queues_one_sync_per_marketplace(seller: int, sync_logs: SyncLogs) -> None:
    log = await sync_logs.enqueue(
        organization_id=seller, marketplace="amazon", trigger="manual", started_by=None
    )
    assert (log.status, log.attempt, log.started_at, log.finished_at) == ("queued", 0, None, None)
    with pytest.raises(AlreadyExists, match="amazon sync is already queued or running"):
        await queue(sync_logs, seller, "amazon")
    assert await queue(sync_logs, seller, "walmart") != log.id


async def test_a_start_needs_active_credentials(signup: Signup, sync_logs: SyncLogs) -> None:
    ann = await signup("ann")
    with pytest.raises(FailedPrecondition, match="no walmart credentials are saved"):
        await queue(sync_logs, ann.identity.organization_id)


async def test_concurrent_starts_queue_one_sync(seller: int, sync_logs: SyncLogs) -> None:
    outcomes = await asyncio.gather(
        *(queue(sync_logs, seller) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert sum(isinstance(o, AlreadyExists) for o in outcomes) == 5


async def test_claims_run_each_sync_once_oldest_first(
    signup: Signup, credentials: Credentials, sync_logs: SyncLogs
) -> None:
    orgs = []
    for n in range(6):
        user = await signup(f"u{n}")
        await credentials.save(user.identity, "walmart", WALMART)
        orgs.append(user.identity.organization_id)
    ids = [await queue(sync_logs, org) for org in orgs]
    claims = await asyncio.gather(
        *(sync_logs.claim(replica=f"r{n}", max_syncs=2) for n in range(5))
    )
    mine = [[c.log.id for c in claim if c.log.organization_id in orgs] for claim in claims]
    everything = sorted(i for ids_ in mine for i in ids_)
    assert everything == ids  # each exactly once
    assert all(len(claim) <= 2 for claim in claims)
    for claim in claims:
        for claimed in claim:
            assert (claimed.log.status, claimed.log.attempt) == ("running", 1)
            assert claimed.log.started_at is not None and claimed.claim


async def test_a_heartbeat_needs_the_current_claim(
    seller: int, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    sync_id = await queue(sync_logs, seller)
    [run] = await claim_own(sync_logs, seller)
    counts = SyncCounts(items_fetched=40, items_written=7)
    await sync_logs.heartbeat(
        organization_id=seller, sync_id=sync_id, claim=run.claim, counts=counts
    )
    current = await sync_logs.get(organization_id=seller, sync_id=sync_id)
    assert (current.items_fetched, current.items_written) == (40, 7)
    other_claim = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(FailedPrecondition, match="no longer held"):
        await sync_logs.heartbeat(
            organization_id=seller, sync_id=sync_id, claim=other_claim, counts=counts
        )


async def test_a_run_past_its_lease_goes_back_to_the_queue_and_loses_its_claim(
    seller: int, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    sync_id = await queue(sync_logs, seller)
    [first] = await claim_own(sync_logs, seller, "dead-replica")
    await age(pool, sync_id, "heartbeat_at", 3)
    assert await sync_logs.requeue_expired() >= 1

    requeued = await sync_logs.get(organization_id=seller, sync_id=sync_id)
    assert (requeued.status, requeued.attempt, requeued.error) == ("queued", 1, DEAD_SYNC_ERROR)
    assert requeued.finished_at is None
    await age(pool, sync_id, "run_after", 5)  # past the backoff
    [second] = await claim_own(sync_logs, seller, "live-replica")
    assert (second.log.id, second.log.attempt) == (sync_id, 2)
    # The dead replica's claim no longer holds: it can neither heartbeat nor record an outcome.
    with pytest.raises(FailedPrecondition):
        await sync_logs.heartbeat(
            organization_id=seller, sync_id=sync_id, claim=first.claim, counts=SyncCounts()
        )
    with pytest.raises(FailedPrecondition):
        await sync_logs.finish(
            organization_id=seller, sync_id=sync_id, claim=first.claim, status="succeeded",
            counts=SyncCounts(),
        )  # fmt: skip
    done = await sync_logs.finish(
        organization_id=seller, sync_id=sync_id, claim=second.claim, status="succeeded",
        counts=SyncCounts(items_written=3),
    )  # fmt: skip
    assert (done.status, done.attempt, done.items_written) == ("succeeded", 2, 3)


async def test_a_retried_sync_waits_its_backoff_and_fails_after_its_last_attempt(
    seller: int, pool: AsyncConnectionPool
) -> None:
    sync_logs = SyncLogs(pool, QueuePolicy(max_attempts=3, retry_backoff=timedelta(minutes=1)))
    sync_id = await queue(sync_logs, seller)
    for attempt in (1, 2, 3):
        [run] = await claim_own(sync_logs, seller)
        assert run.log.attempt == attempt
        log = await sync_logs.finish(
            organization_id=seller, sync_id=sync_id, claim=run.claim, status="failed",
            counts=SyncCounts(items_fetched=attempt), error=f"Walmart kept failing ({attempt})",
            retry=True,
        )  # fmt: skip
        if attempt < 3:
            assert (log.status, log.error) == ("queued", f"Walmart kept failing ({attempt})")
            assert await claim_own(sync_logs, seller) == []  # backing off
            await age(pool, sync_id, "run_after", 10)
    assert (log.status, log.attempt, log.error) == ("failed", 3, "Walmart kept failing (3)")
    assert log.finished_at is not None and log.duration_ms is not None
    # Ended for good: a new start queues a new sync.
    assert await queue(sync_logs, seller) != sync_id


async def test_a_released_run_is_claimed_at_once_without_counting_an_attempt(
    seller: int, sync_logs: SyncLogs
) -> None:
    sync_id = await queue(sync_logs, seller)
    [run] = await claim_own(sync_logs, seller, "stopping")
    await sync_logs.release(
        organization_id=seller, sync_id=sync_id, claim=run.claim,
        counts=SyncCounts(items_fetched=5),
    )  # fmt: skip
    [taken] = await claim_own(sync_logs, seller, "other")
    assert (taken.log.id, taken.log.attempt, taken.log.items_fetched) == (sync_id, 1, 5)


async def test_finish_records_counts_and_duration(
    seller: int, sync_logs: SyncLogs, pool: AsyncConnectionPool
) -> None:
    sync_id = await queue(sync_logs, seller)
    [run] = await claim_own(sync_logs, seller)
    await age(pool, sync_id, "started_at", 1)
    counts = SyncCounts(items_fetched=10, items_written=6, items_unchanged=3, items_failed=1)
    held = Held(organization_id=seller, sync_id=sync_id, claim=run.claim)
    done = await sync_logs.finish(**held, status="partial", counts=counts, error="1 failed")
    assert (done.status, done.items_failed, done.error) == ("partial", 1, "1 failed")
    assert done.duration_ms is not None and 60_000 <= done.duration_ms < 70_000
    with pytest.raises(FailedPrecondition, match="has ended \\(partial"):
        await sync_logs.finish(**held, status="failed", counts=counts)
    with pytest.raises(InvalidArgument, match="status: 'running'"):
        await sync_logs.finish(**held, status="running", counts=counts)
    with pytest.raises(InvalidArgument, match="retry: only a failed run"):
        await sync_logs.finish(**held, status="succeeded", counts=counts, retry=True)
    with pytest.raises(InvalidArgument, match="items_failed: must not be negative"):
        await sync_logs.heartbeat(**held, counts=SyncCounts(items_failed=-1))


async def test_the_catalogue_size_is_unknown_until_a_run_reports_it_then_kept_to_the_end(
    seller: int, sync_logs: SyncLogs
) -> None:
    sync_id = await queue(sync_logs, seller)
    [run] = await claim_own(sync_logs, seller)
    held = Held(organization_id=seller, sync_id=sync_id, claim=run.claim)
    assert run.log.items_total is None
    await sync_logs.heartbeat(**held, counts=SyncCounts(items_fetched=0))
    assert (await sync_logs.get(organization_id=seller, sync_id=sync_id)).items_total is None

    await sync_logs.heartbeat(**held, counts=SyncCounts(items_fetched=50, items_total=120))
    running = await sync_logs.get(organization_id=seller, sync_id=sync_id)
    assert (running.items_fetched, running.items_total) == (50, 120)
    counts = SyncCounts(items_fetched=120, items_written=120, items_total=120)
    done = await sync_logs.finish(**held, status="succeeded", counts=counts)
    assert (done.items_fetched, done.items_total) == (120, 120)
    [listed] = (await sync_logs.list_page(organization_id=seller, limit=1)).logs
    assert listed.items_total == 120
    with pytest.raises(InvalidArgument, match="items_total: must not be negative"):
        await sync_logs.heartbeat(**held, counts=SyncCounts(items_total=-1))


async def test_logs_are_scoped_to_their_organization(
    seller: int, signup: Signup, sync_logs: SyncLogs
) -> None:
    bob = await signup("bob")
    sync_id = await queue(sync_logs, seller)
    [run] = await claim_own(sync_logs, seller)
    bob_org = bob.identity.organization_id
    held = Held(organization_id=bob_org, sync_id=sync_id, claim=run.claim)
    with pytest.raises(NotFound, match=f"there is no sync {sync_id}"):
        await sync_logs.get(organization_id=bob_org, sync_id=sync_id)
    with pytest.raises(NotFound):
        await sync_logs.heartbeat(**held, counts=SyncCounts())
    with pytest.raises(NotFound):
        await sync_logs.finish(**held, status="failed", counts=SyncCounts())
    assert (await sync_logs.list_page(organization_id=bob_org, limit=10)).logs == ()


async def test_list_pages_newest_first(seller: int, sync_logs: SyncLogs) -> None:
    ids = []
    for _ in range(5):
        sync_id = await queue(sync_logs, seller)
        [run] = await claim_own(sync_logs, seller)
        await sync_logs.finish(
            organization_id=seller, sync_id=sync_id, claim=run.claim, status="succeeded",
            counts=SyncCounts(),
        )  # fmt: skip
        ids.append(sync_id)
    first = await sync_logs.list_page(organization_id=seller, limit=2)
    second = await sync_logs.list_page(
        organization_id=seller, limit=2, before_id=first.next_before_id
    )
    last = await sync_logs.list_page(
        organization_id=seller, limit=2, before_id=second.next_before_id
    )
    pages = [[log.id for log in page.logs] for page in (first, second, last)]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert last.next_before_id is None
    with pytest.raises(InvalidArgument, match="page_size"):
        await sync_logs.list_page(organization_id=seller, limit=0)


async def test_due_syncs_are_queued_once(
    signup: Signup, sync_logs: SyncLogs, credentials: Credentials, pool: AsyncConnectionPool
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    for user in (ann, bob):
        await credentials.save(user.identity, "walmart", WALMART)
    ann_org, bob_org = ann.identity.organization_id, bob.identity.organization_id
    ann_log = await queue(sync_logs, ann_org)
    hour, none = timedelta(hours=1), timedelta(0)
    rounds = await asyncio.gather(
        *(sync_logs.enqueue_due(interval=hour, jitter=none) for _ in range(4))
    )
    queued = [d for due in rounds for d in due]
    assert queued.count(DueSync(bob_org, "walmart")) == 1  # never synced: queued once
    assert DueSync(ann_org, "walmart") not in queued  # already queued
    assert DueSync(ann_org, "amazon") not in queued  # no credentials
    [run] = await claim_own(sync_logs, ann_org)
    await sync_logs.finish(
        organization_id=ann_org, sync_id=ann_log, claim=run.claim, status="succeeded",
        counts=SyncCounts(),
    )  # fmt: skip
    assert DueSync(ann_org, "walmart") not in await sync_logs.enqueue_due(
        interval=hour, jitter=none
    )  # queued within the hour
    await age(pool, ann_log, "queued_at", 61)
    assert DueSync(ann_org, "walmart") in await sync_logs.enqueue_due(interval=hour, jitter=none)


async def test_due_syncs_spread_over_the_jitter(
    signup: Signup, sync_logs: SyncLogs, credentials: Credentials
) -> None:
    ann = await signup("ann")
    await credentials.save(ann.identity, "walmart", WALMART)
    org = ann.identity.organization_id
    queued = await sync_logs.enqueue_due(interval=timedelta(hours=1), jitter=timedelta(hours=1))
    assert DueSync(org, "walmart") in queued
    # The delay is random within an hour: almost surely not yet due to run.
    assert await claim_own(sync_logs, org) == []
