"""The sync service's metrics (served by marketsync.metrics' exporter): runs and their items on
this replica, and every request made to a marketplace."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SYNC_RUNS = Counter(
    "marketsync_sync_runs_total",
    "Sync runs this replica ended: succeeded, partial, failed (for good or to be retried: see "
    "retry), retry (a failed run queued again) or handed_back (this replica stopped).",
    ["marketplace", "status"],
)
SYNC_ITEMS = Counter(
    "marketsync_sync_items_total",
    "Products of this replica's runs: fetched from the marketplace, then written, unchanged or "
    "failed in the catalog.",
    ["marketplace", "outcome"],
)
SYNC_RUNNING = Gauge("marketsync_sync_running", "Syncs this replica is running now.")
SYNC_SECONDS = Histogram(
    "marketsync_sync_duration_seconds",
    "How long each run took, by how it ended.",
    ["marketplace", "status"],
    # From an empty catalogue to a first Amazon sync of a large one (hours).
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800),
)
MARKETPLACE_REQUESTS = Counter(
    "marketsync_marketplace_requests_total",
    "Requests to a marketplace by operation and HTTP status (429: throttled; error: no answer).",
    ["marketplace", "operation", "status"],
)
PACING_WAIT = Counter(
    "marketsync_marketplace_pacing_wait_seconds_total",
    "Time syncs waited for their turn under a marketplace's rate limits.",
    ["marketplace", "operation"],
)
# A request that got no HTTP answer (connection dropped, timed out).
NO_ANSWER = "error"


def count_request(marketplace: str, operation: str, status: int | str) -> None:
    MARKETPLACE_REQUESTS.labels(marketplace, operation, str(status)).inc()
