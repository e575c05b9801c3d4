"""The auth service's metrics (served by marketsync.metrics' exporter): logins, lockouts, password
hashing, the database pool and, since auth keeps the sync queue, the state of every sync.

The pool and queue figures are read when Prometheus scrapes: the pool's from psycopg_pool's
counters, the queue's by one query on the event loop, whose answer serves the scrapes of the
next few seconds (every replica answers for the whole system: alert on max, not sum).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Iterator
from datetime import timedelta
from typing import TypeVar

import psycopg
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import ResourceExhausted, Unauthenticated
from marketsync.marketplaces import MARKETPLACES
from services.auth import store
from services.auth.models import QueueState

log = logging.getLogger(__name__)

LOGINS = Counter(
    "marketsync_auth_logins_total",
    "Login attempts by outcome: succeeded, wrong_credentials, or refused (rate limited, locked "
    "out or too many checks of the email at once).",
    ["outcome"],
)
LOCKOUTS = Counter(
    "marketsync_auth_lockouts_total",
    "Logins refused because too many failed ones locked the client (or the email) out.",
)
PASSWORD_HASH_SECONDS = Histogram(
    "marketsync_auth_password_hash_seconds",
    "Time a password hash or check took, its wait for the hashing CPU included: logins queue "
    "there when they come faster than the replica's hashing share (half a CPU) hashes them.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
T = TypeVar("T")
# Queue figures this old are read again at the next scrape.
QUEUE_STATE_SECONDS = 5.0
QUEUE_QUERY_TIMEOUT_SECONDS = 5.0


async def counted_login(login: Awaitable[T]) -> T:
    """The login's answer, its outcome counted."""
    try:
        answer = await login
    except Unauthenticated:
        LOGINS.labels("wrong_credentials").inc()
        raise
    except ResourceExhausted:
        LOGINS.labels("refused").inc()
        raise
    LOGINS.labels("succeeded").inc()
    return answer


class AuthStateCollector(Collector):
    """The pool's connections and the sync queue, read at scrape time (from the exporter's
    thread; the queue query runs on `loop`)."""

    def __init__(
        self, pool: AsyncConnectionPool, loop: asyncio.AbstractEventLoop, overdue_after: timedelta
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._overdue_after = overdue_after
        self._lock = threading.Lock()
        self._state: QueueState | None = None
        self._read_at = float("-inf")

    def describe(self) -> Iterator[Metric]:
        """The metrics' names, for the registry, without reading anything (it asks once, on the
        event loop's thread, where waiting for the loop would stall it)."""
        yield GaugeMetricFamily("marketsync_auth_db_pool_connections", "", labels=["state"])
        for name in (
            "marketsync_sync_queue_depth",
            "marketsync_sync_oldest_queued_seconds",
            "marketsync_sync_oldest_running_seconds",
        ):
            yield GaugeMetricFamily(name, "", labels=["marketplace"])
        yield GaugeMetricFamily("marketsync_sync_organizations_overdue", "")

    def collect(self) -> Iterator[Metric]:
        yield self._pool_connections()
        state = self._queue_state()
        if state is None:
            return  # the database did not answer: no figure rather than a wrong one
        depth = GaugeMetricFamily(
            "marketsync_sync_queue_depth",
            "Syncs queued in the whole system, waiting for a replica (or for their retry).",
            labels=["marketplace"],
        )
        queued = GaugeMetricFamily(
            "marketsync_sync_oldest_queued_seconds",
            "How long the longest-waiting claimable queued sync has waited since it could run.",
            labels=["marketplace"],
        )
        running = GaugeMetricFamily(
            "marketsync_sync_oldest_running_seconds",
            "How long the longest-running sync has been running.",
            labels=["marketplace"],
        )
        for marketplace in MARKETPLACES:
            depth.add_metric([marketplace], state.queued.get(marketplace, 0))
            queued.add_metric([marketplace], state.oldest_queued_seconds.get(marketplace, 0.0))
            running.add_metric([marketplace], state.oldest_running_seconds.get(marketplace, 0.0))
        yield from (depth, queued, running)
        yield GaugeMetricFamily(
            "marketsync_sync_organizations_overdue",
            "Organizations with a connected marketplace whose last successful (or partial) sync "
            "of it is older than twice the scheduler's interval (SYNC_INTERVAL_SECONDS).",
            value=state.organizations_overdue,
        )

    def _pool_connections(self) -> Metric:
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        family = GaugeMetricFamily(
            "marketsync_auth_db_pool_connections",
            "Database pool connections: in_use, idle, and waiting (requests waiting for one).",
            labels=["state"],
        )
        family.add_metric(["in_use"], size - idle)
        family.add_metric(["idle"], idle)
        family.add_metric(["waiting"], stats.get("requests_waiting", 0))
        return family

    def _queue_state(self) -> QueueState | None:
        with self._lock:
            if time.monotonic() - self._read_at >= QUEUE_STATE_SECONDS:
                self._state = self._read_queue_state()
                self._read_at = time.monotonic()
            return self._state

    def _read_queue_state(self) -> QueueState | None:
        reading = asyncio.run_coroutine_threadsafe(self._query(), self._loop)
        try:
            return reading.result(QUEUE_QUERY_TIMEOUT_SECONDS)
        except (psycopg.Error, TimeoutError) as exc:
            reading.cancel()
            log.warning("sync queue metrics unavailable", extra={"detail": str(exc)})
            return None

    async def _query(self) -> QueueState:
        async with self._pool.connection() as conn:
            return await store.queue_state(conn, overdue_after=self._overdue_after)
