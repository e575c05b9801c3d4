"""Sync figures, each next to the floor the marketplaces' documented rates set where there is
one: Walmart and Amazon first syncs against their floors; 120 organizations syncing at once on
one replica against one alone and against raw writes of the very items they stored; 500 small
syncs at once (threads); one replica against two; and the sync process's peak memory for 1,000
and for 50,000 products, each sample a fresh sync replica running that one sync.

The 50,000-product syncs take over four minutes each at Walmart's rates, so their three samples
run side by side, each in its own replica, and nothing else runs meanwhile.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import psycopg
from mypy_boto3_dynamodb import DynamoDBClient

from dev.stack import PYTHON, Child, free_port
from marketsync.sync.v1 import sync_pb2, sync_pb2_grpc
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.tables import ensure_table
from services.sync.marketplaces.walmart import PAGE_LIMIT as WALMART_PAGE_LIMIT
from tests.bench.backends import batch_writes, replay
from tests.bench.figures import SAMPLES, collect, progress
from tests.bench.support import (
    Bench,
    Seller,
    run_all,
    sellers,
    start_all,
    sync_floor,
    wait_serving,
)

WALMART_FLOOR_SIZE = 10_000
AMAZON_FLOOR_SIZE = 2_000
CONCURRENT_ORGS = 120
CONCURRENT_SIZE = 100
MANY_SYNCS = 500
MANY_SIZE = 10
SCALE_OUT_SYNCS = 36
SCALE_OUT_SIZE = 200  # 4 item pages, each answered after SCALE_OUT_DELAY
# A marketplace as slow as real ones are under load: syncs mostly wait, which is what more
# replicas help with. Both batches share one catalog and one DynamoDB server (scaled on their
# own in production), whose part of a wave stays the same however many replicas there are.
SCALE_OUT_DELAY = 1.0
SCALE_OUT_CAPACITY = 6
MEMORY_SIZES = (1_000, 50_000)
MEMORY_POLL_SECONDS = 0.1
# The stack's replica holds every concurrent sync the bench starts.
REPLICA_CAPACITY = 600
# How often an idle replica looks for queued syncs; it claims at once when woken (a sync queued
# through it, a run of its own ending). The stack's replica looks rarely, so it almost never
# takes a sync queued through a memory sample's own replica (the sample would then fail). A
# memory replica claims only as it starts and when its own sync is queued, and no sample queues
# its sync before every replica taken side by side has started; one of its own left queued fails
# the sample at once.
STACK_REPLICA_CLAIM_SECONDS = "30"
MEMORY_REPLICA_CLAIM_SECONDS = "3600"
MEMORY_CLAIM_SECONDS = 30
MEMORY_SYNC_SECONDS = 900
SERVING_SECONDS = 120
SYNC_ARGV = [PYTHON, "-m", "services.sync.server"]
REGION = "us-east-1"


def duration(seller: Seller, sync_id: str) -> float:
    """The run's own duration as auth recorded it, from claim to outcome."""
    return float(seller.log(sync_id)["duration_ms"]) / 1000


def warm_up(bench: Bench) -> None:
    walmart, amazon = Seller(bench.client, "walmart", 100), Seller(bench.client, "amazon", 100)
    run_all(bench, start_all([walmart, amazon]))


# ---- many at once ---------------------------------------------------------------------------


def _table_keys(
    client: DynamoDBClient, table: str, projection: str = "PK, SK"
) -> set[tuple[str, str]]:
    return {(item["PK"]["S"], item["SK"]["S"]) for item in _scan(client, table, projection)}


def _scan(
    client: DynamoDBClient, table: str, projection: str | None = None
) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"TableName": table}
    if projection:
        query["ProjectionExpression"] = projection
    items: list[dict[str, Any]] = []
    while True:
        answer = client.scan(**query)
        items.extend(answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            return items
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _raw_write_seconds(client: DynamoDBClient, items: list[dict[str, Any]]) -> float:
    """BatchWriteItem of these items, 25 a call, into a table of their own."""
    table = f"bench-raw-sync-{time.time_ns() % 10**9}"
    ensure_table(client, table)
    calls = batch_writes(items, table)
    started = time.perf_counter()
    replay(client, calls)
    return time.perf_counter() - started


def bench_many_at_once(bench: Bench) -> None:
    """120 organizations start a 100-product Amazon sync at once on one replica, against one
    alone and against raw BatchWriteItem of exactly the items the 120 left in the table; then
    500 small Walmart syncs at once. The replica's threads are sampled all along."""
    replica = psutil.Process(bench.child("sync").process.pid)
    threads = [replica.num_threads()]
    dynamodb = make_dynamodb_client(REGION, bench.endpoint)
    table = bench.stack.env["PRODUCTS_TABLE_NAME"]

    def count_threads() -> None:
        threads.append(replica.num_threads())

    def at_once(group: list[Seller]) -> float:
        return max(run_all(bench, start_all(group), count_threads).values())

    def sample() -> dict[str, float]:
        alone = Seller(bench.client, "amazon", CONCURRENT_SIZE)
        alone_seconds = at_once([alone])
        group = sellers(bench.client, "amazon", CONCURRENT_SIZE, CONCURRENT_ORGS)
        before = _table_keys(dynamodb, table)
        together = at_once(group)
        # The items the 120 syncs stored: whatever the table holds now that it did not before,
        # but the organizations' creation leases (services/catalog/leases.py).
        stored = [
            item
            for item in _scan(dynamodb, table)
            if (item["PK"]["S"], item["SK"]["S"]) not in before
            and not item["PK"]["S"].endswith("#LEASE")
        ]
        raw = _raw_write_seconds(dynamodb, stored)
        many = sellers(bench.client, "walmart", MANY_SIZE, MANY_SYNCS)
        threads.append(replica.num_threads())
        many_seconds = at_once(many)
        return {
            "amazon_100_alone_s": alone_seconds,
            "amazon_100_x120_at_once_s": together,
            "raw_write_x120_items_s": raw,
            "x120_items_stored": len(stored),
            "walmart_10_x500_at_once_s": many_seconds,
            "sync_threads_max": max(threads),
        }

    # The group's warm-up syncs have run: every sample here is measured.
    values = collect(sample, warmups=0)
    # Every organization has its own sandbox account, so each of the 120 has the floor one
    # alone has (its Catalog Items calls at Amazon's rate).
    floors = {
        "amazon_100": sync_floor("amazon", CONCURRENT_SIZE, f"Atzr|bench-{CONCURRENT_SIZE}"),
        "walmart_10_": sync_floor("walmart", MANY_SIZE, ""),
    }
    units = {"max": "threads", "stored": "items"}
    for name, samples in values.items():
        unit = next((u for suffix, u in units.items() if name.endswith(suffix)), "s")
        bench.results.add(
            name,
            unit,
            samples,
            backend=bench.catalog_backend if name.startswith("raw") else "",
            floor=next((f for prefix, f in floors.items() if name.startswith(prefix)), None),
        )


# ---- the rate-limit floors ------------------------------------------------------------------


def bench_floors(bench: Bench) -> None:
    """A 10,000-product Walmart and a 2,000-product Amazon first sync, side by side (separate
    accounts share no bucket), each against the floor of its slowest operation."""
    floors: dict[str, list[float]] = {"walmart_10k_sync_s": [], "amazon_2k_sync_s": []}

    def sample() -> dict[str, float]:
        walmart = Seller(bench.client, "walmart", WALMART_FLOOR_SIZE)
        amazon = Seller(bench.client, "amazon", AMAZON_FLOOR_SIZE)
        runs = start_all([walmart, amazon])
        run_all(bench, runs)
        floors["walmart_10k_sync_s"].append(walmart.floor())
        floors["amazon_2k_sync_s"].append(amazon.floor())
        return {
            "walmart_10k_sync_s": duration(walmart, runs[0][1]),
            "amazon_2k_sync_s": duration(amazon, runs[1][1]),
        }

    for name, samples in collect(sample, warmups=0).items():
        floor = sorted(floors[name])[len(floors[name]) // 2]
        bench.results.add(name, "s", samples, floor=floor)


# ---- one replica against two ----------------------------------------------------------------


def bench_scale_out(bench: Bench) -> None:
    """The same batch of slow syncs (the sandbox's delay switch) on one replica, then on two,
    each running at most SCALE_OUT_CAPACITY at once. Replaces the stack's replica for good."""
    stack = bench.stack
    main = bench.child("sync")
    port = main.extra_env["GRPC_PORT"]
    main.stop()
    stack.children.remove(main)
    capacity = {
        **stack.private_env["sync"],
        "SYNC_MAX_CONCURRENT": str(SCALE_OUT_CAPACITY),
        # Syncs are queued through one replica; the other finds them by polling.
        "SYNC_CLAIM_INTERVAL_SECONDS": "0.5",
    }
    first = stack.spawn("sync", SYNC_ARGV, {"GRPC_PORT": port, **capacity})
    wait_serving(f"127.0.0.1:{port}", first)

    def batch() -> float:
        group = sellers(bench.client, "walmart", SCALE_OUT_SIZE, SCALE_OUT_SYNCS)
        for seller in group:
            httpx.post(
                f"{stack.env['WALMART_API_BASE_URL']}/_sandbox/faults",
                json={"account": seller.account, "delay_seconds": {"getAllItems": SCALE_OUT_DELAY}},
            ).raise_for_status()
        return max(run_all(bench, start_all(group)).values())

    def sample() -> dict[str, float]:
        one = batch()
        second_port = free_port()
        second = stack.spawn("sync-2", SYNC_ARGV, {"GRPC_PORT": str(second_port), **capacity})
        try:
            wait_serving(f"127.0.0.1:{second_port}", second)
            two = batch()
        finally:
            second.stop()
            stack.children.remove(second)
        return {"scale_out_one_replica_s": one, "scale_out_two_replicas_s": two}

    # Fresh replicas: the first batch warms them up.
    pages = -(-SCALE_OUT_SIZE // WALMART_PAGE_LIMIT)
    waves = {"one": -(-SCALE_OUT_SYNCS // SCALE_OUT_CAPACITY)}
    waves["two"] = -(-SCALE_OUT_SYNCS // (2 * SCALE_OUT_CAPACITY))
    for name, samples in collect(sample).items():
        wave_count = waves["one"] if "one" in name else waves["two"]
        # The sandbox's delay alone: each wave's syncs read their pages one after another.
        bench.results.add(name, "s", samples, floor=wave_count * pages * SCALE_OUT_DELAY)


# ---- memory ---------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int | None:
    """The kernel's high-water mark of the process's resident memory (Linux), in bytes."""
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_sample(
    bench: Bench, size: int, all_started: threading.Barrier | None = None
) -> dict[str, float]:
    """A fresh sync replica runs one first Walmart sync of `size` products; its peak RSS. The
    sync is started and followed through that replica's own port, not Envoy. Samples taken
    side by side pass `all_started`: a replica claims whatever is queued as it starts, so no
    sync is started before every replica has."""
    stack = bench.stack
    port = free_port()
    seller = Seller(bench.client, "walmart", size)
    replica: Child = stack.spawn(
        f"sync-mem-{size}",
        SYNC_ARGV,
        {
            **stack.private_env["sync"],
            "GRPC_PORT": str(port),
            "SYNC_MAX_CONCURRENT": "1",
            "SYNC_CLAIM_INTERVAL_SECONDS": MEMORY_REPLICA_CLAIM_SECONDS,
            "SYNC_SCHEDULE_INTERVAL_SECONDS": "0",
        },
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address, replica)
        # Its first claim, made as it starts, is over: the wake our sync brings is not lost.
        time.sleep(1)
        if all_started is not None:
            all_started.wait(timeout=SERVING_SECONDS)
        process = psutil.Process(replica.process.pid)
        idle = process.memory_info().rss
        with grpc.insecure_channel(address) as channel:
            stub = sync_pb2_grpc.SyncServiceStub(channel)
            metadata = (("authorization", f"Bearer {seller.user.token}"),)
            stub.StartSync(
                sync_pb2.StartSyncRequest(marketplace="walmart"), metadata=metadata, timeout=30
            )
        # Followed by the replica, not the sync id: replicas side by side claim the oldest
        # queued sync, so one may run another's, all of the same size.
        name = f"{socket.gethostname()}:{process.pid}"
        run: _ReplicaRun | None = None
        sampled, checked, started = idle, 0.0, time.monotonic()
        while run is None or run.status not in ("succeeded", "partial", "failed"):
            waited = time.monotonic() - started
            limit = MEMORY_CLAIM_SECONDS if run is None else MEMORY_SYNC_SECONDS
            if waited > limit:
                raise RuntimeError(
                    f"memory replica {name}: {run or 'nothing claimed'} after {waited:.0f} s"
                )
            sampled = max(sampled, process.memory_info().rss)
            if time.monotonic() - checked > 1:
                checked = time.monotonic()
                run = _replica_run(stack.env["CRED_DATABASE_URL"], name)
            time.sleep(MEMORY_POLL_SECONDS)
        if run.status != "succeeded":
            raise RuntimeError(f"memory replica {name}'s sync ended {run.status}: {run.error}")
        peak = _peak_rss(process.pid) or sampled
    finally:
        replica.stop()
        stack.children.remove(replica)
    return {
        "peak_rss_mb": peak / 2**20,
        "idle_rss_mb": idle / 2**20,
        "sync_s": run.duration_ms / 1000,
    }


@dataclass(frozen=True)
class _ReplicaRun:
    status: str
    error: str | None
    duration_ms: int


def _replica_run(database: str, replica: str) -> _ReplicaRun | None:
    """The one sync this replica (named host:pid) ran or runs, or None before it claims one."""
    with psycopg.connect(database, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT status, error, coalesce(duration_ms, 0) FROM sync_logs WHERE replica = %s",
            (replica,),
        ).fetchall()
    if len(rows) > 1:
        raise RuntimeError(f"memory replica {replica} ran {len(rows)} syncs, not one")
    return _ReplicaRun(*rows[0]) if rows else None


def _add_memory(bench: Bench, size: int, samples: list[dict[str, float]]) -> None:
    label = f"{size // 1000}k"
    by_name = {name: [s[name] for s in samples] for name in samples[0]}
    bench.results.add(f"sync_peak_rss_mb_walmart_{label}", "MB", by_name["peak_rss_mb"])
    bench.results.add(f"sync_idle_rss_mb_walmart_{label}", "MB", by_name["idle_rss_mb"])
    bench.results.add(
        f"walmart_{label}_sync_s",
        "s",
        by_name["sync_s"],
        floor=sync_floor("walmart", size, ""),
        note="memory sample's own replica",
    )


def _side_by_side(bench: Bench, size: int, count: int) -> list[dict[str, float]]:
    all_started = threading.Barrier(count)
    with ThreadPoolExecutor(count, thread_name_prefix="memory") as pool:
        runs = [pool.submit(memory_sample, bench, size, all_started) for _ in range(count)]
        return [run.result() for run in runs]


def run(bench: Bench) -> None:
    small, large = MEMORY_SIZES
    progress(f"syncs on {bench.catalog_backend}: warm-up")
    warm_up(bench)
    progress("syncs: 120 Amazon syncs at once, then 500 small Walmart syncs at once")
    bench_many_at_once(bench)
    progress(f"syncs: peak RSS of fresh replicas, {small:,} products, one after another")
    _add_memory(bench, small, [memory_sample(bench, small) for _ in range(SAMPLES)])
    # Each takes four minutes at Walmart's rate: side by side, with nothing else running (the
    # catalog storing 600 products a second is busy enough).
    progress(f"syncs: peak RSS of fresh replicas, {large:,} products, {SAMPLES} side by side")
    _add_memory(bench, large, _side_by_side(bench, large, SAMPLES))
    progress("syncs: Walmart 10k and Amazon 2k against their floors")
    bench_floors(bench)
    progress("syncs: one replica against two")
    bench_scale_out(bench)
