"""Catalog figures, run once per DynamoDB server: GetProduct through Envoy, direct over gRPC and
as the bare DynamoDB read it makes; the CPU each process spends per GetProduct; batch upserts
through Envoy, first and unchanged; the store's batch upsert against raw BatchWriteItem of the
very items it wrote; write units per first-synced product; and a profile of the catalog.

Every comparison has the same work on both sides: the raw read and the raw writes replay the
calls the store itself made (recorded in process), and an unchanged upsert re-sends the batch
its first upsert stored.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from mypy_boto3_dynamodb import DynamoDBClient

from dev.stack import BIN
from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from services.catalog.capacity import indexes_of, write_units
from services.catalog.domain import ProductInput
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.store import ProductStore
from services.catalog.tables import ensure_table
from tests.bench.backends import (
    CallRecorder,
    RecordingProxy,
    batch_writes,
    bench_dir,
    items_put,
    items_written,
    replay,
)
from tests.bench.figures import collect, progress
from tests.bench.support import (
    Bench,
    Seller,
    User,
    point_catalog,
    replace_service,
    run_all,
    start_all,
)

LATENCY_CALLS = 300
BATCH = 1000
# A batch takes under a second a side, and one side's samples spread by a quarter on a shared
# machine: seven make the median steadier at little cost.
STORE_SAMPLES = 7
# A first sync small enough to take seconds, large enough that per-sync costs vanish.
WRITE_UNIT_SYNC_SIZE = 500
PROFILE_SECONDS = 15
PROFILE_CLIENTS = 4
REGION = "us-east-1"

_skus = itertools.count()


def rest_product(n: int) -> dict[str, Any]:
    return {
        "sku": f"BENCH-{n:07d}",
        "title": f"Bench product {n} with a title of ordinary length",
        "description": "A description of about a hundred characters, as product feeds often have. "
        * 2,
        "brand": "Bench",
        "category": "Tools",
        "price": "19.99",
        "currency": "USD",
        "inventory_quantity": n % 50,
    }


def synced_product(n: int) -> ProductInput:
    """A product as a Walmart sync writes it: with its marketplace listing."""
    return ProductInput(
        sku=f"SYNC-{n:07d}",
        marketplace="walmart",
        title=f"Café Crème Mug™ {n}",
        description="Crème de la crème \u2013 made to last. " * 3,
        brand="Nestlé Home",
        category="Kitchen & Dining",
        price=Decimal("12.49"),
        currency="USD",
        inventory_quantity=n % 40,
        image_url=f"https://i5.walmartimages.com/asr/{n:08x}.jpeg",
        external_id=f"W{n:09d}",
        listing_status="PUBLISHED",
    )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def seed(bench: Bench) -> tuple[User, str]:
    """An organization whose products came from a small Walmart sync, and one of their SKUs:
    GetProduct then reads a product with its listing, as most reads will."""
    seller = Seller(bench.client, "walmart", 50)
    run_all(bench, start_all([seller]))
    page = bench.client.get("/api/products", params={"page_size": 1}, headers=seller.headers)
    page.raise_for_status()
    return seller.user, str(page.json()["products"][0]["sku"])


def store_of(endpoint: str, table: str) -> tuple[DynamoDBClient, ProductStore]:
    client = make_dynamodb_client(REGION, endpoint)
    return client, ProductStore(client, table, b"bench-page-token-key-0123456789abcdef")


def bench_reads(bench: Bench, user: User, sku: str) -> None:
    """GetProduct p50 through Envoy, direct, and as its DynamoDB read alone; CPU per call."""
    backend = bench.catalog_backend
    table = bench.stack.env["PRODUCTS_TABLE_NAME"]
    client, store = store_of(bench.endpoint, table)
    with CallRecorder(client) as recorder:
        store.get(user.organization_id, sku)
    read = list(recorder.calls)
    catalog = psutil.Process(bench.child("catalog").process.pid)
    envoy = psutil.Process(bench.child("gateway").process.pid)
    channel = grpc.insecure_channel(bench.stack.env["CATALOG_ADDRESS"])
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    request = catalog_pb2.GetProductRequest(sku=sku)
    metadata = (("authorization", f"Bearer {user.token}"),)

    def sample() -> dict[str, float]:
        rest = []
        cpu_before = _cpu_seconds(catalog), _cpu_seconds(envoy)
        for _ in range(LATENCY_CALLS):
            started = time.perf_counter()
            bench.client.get(f"/api/products/{sku}", headers=user.headers).raise_for_status()
            rest.append(time.perf_counter() - started)
        cpu_after = _cpu_seconds(catalog), _cpu_seconds(envoy)
        direct = [_timed(lambda: stub.GetProduct(request, metadata=metadata)) for _ in rest]
        raw = [_timed(lambda: replay(client, read)) for _ in rest]
        return {
            "get_rest_p50_ms": statistics.median(rest) * 1000,
            "get_rest_p99_ms": _percentile(rest, 0.99) * 1000,
            "get_grpc_p50_ms": statistics.median(direct) * 1000,
            "get_dynamodb_read_p50_ms": statistics.median(raw) * 1000,
            "catalog_cpu_ms_per_get": (cpu_after[0] - cpu_before[0]) * 1000 / LATENCY_CALLS,
            "envoy_cpu_ms_per_get": (cpu_after[1] - cpu_before[1]) * 1000 / LATENCY_CALLS,
        }

    try:
        values = collect(sample)
    finally:
        channel.close()
    units = {"cpu": "CPU ms/call", "p50": "ms", "p99": "ms"}
    for name, samples in values.items():
        unit = next(u for key, u in units.items() if key in name)
        bench.results.add(name, unit, samples, backend=backend)
    bench.results.facts[f"get_product_dynamodb_calls@{backend}"] = [op for op, _ in read]


def bench_rest_upserts(bench: Bench, user: User) -> None:
    """1,000 new products through Envoy, then the same 1,000 again (all unchanged)."""

    def sample() -> dict[str, float]:
        start = next(_skus) * BATCH
        body = {"products": [rest_product(start + n) for n in range(BATCH)]}

        def upsert() -> None:
            answer = bench.client.post("/api/products:batchUpsert", json=body, headers=user.headers)
            answer.raise_for_status()

        first = _timed(upsert)
        again = _timed(upsert)
        return {
            "rest_first_upsert_products_per_s": BATCH / first,
            "rest_unchanged_upsert_products_per_s": BATCH / again,
        }

    for name, samples in collect(sample).items():
        bench.results.add(name, "products/s", samples, backend=bench.catalog_backend)


def bench_store_against_raw(bench: Bench) -> None:
    """The store's batch upsert of 1,000 new synced products, against raw BatchWriteItem of
    exactly the items it put (however it put them), into a table of their own. Both tables
    grow alike."""
    suffix = f"{time.time_ns() % 10**9}"
    client, _ = store_of(bench.endpoint, "")
    ours, raw = f"bench-store-{suffix}", f"bench-raw-{suffix}"
    ensure_table(client, ours)
    ensure_table(client, raw)
    _, store = store_of(bench.endpoint, ours)
    store_client = store._client  # the store's own client, to record what it sends
    raw_client = make_dynamodb_client(REGION, bench.endpoint)

    def sample() -> dict[str, float]:
        start = next(_skus) * BATCH
        products = [synced_product(start + n) for n in range(BATCH)]
        with CallRecorder(store_client) as recorder:
            store_seconds = _timed(lambda: store.batch_upsert(1, products))
        items = items_put(recorder.writes())
        writes = batch_writes(items, raw)
        raw_seconds = _timed(lambda: replay(raw_client, writes))
        return {
            "items_put_per_synced_product": len(items) / BATCH,
            "store_write_calls_per_synced_product": len(recorder.writes()) / BATCH,
            "store_batch_upsert_products_per_s": BATCH / store_seconds,
            "raw_batch_write_same_items_products_per_s": BATCH / raw_seconds,
            "raw_batch_write_items_per_s": len(items) / raw_seconds,
        }

    # As the catalog server does once started (marketsync/server.py): what the bench holds by
    # now stays out of the collections the samples set off. Walking it made each full collection
    # take about 60 ms (5-16 ms frozen), mostly in the store's samples, which allocate the most.
    gc.collect()
    gc.freeze()
    try:
        values = collect(sample, samples=STORE_SAMPLES)
    finally:
        gc.unfreeze()
    for name, samples in values.items():
        unit = "items/s" if name.endswith("items_per_s") else "products/s"
        if name.endswith("per_synced_product"):
            unit = "items/product" if name.startswith("items") else "calls/product"
        bench.results.add(name, unit, samples, backend=bench.catalog_backend)


def bench_write_units(bench: Bench) -> None:
    """Write units per product of a real first sync, counted from the catalog's requests: the
    catalog runs behind a proxy that keeps every write it sends."""
    table = bench.stack.env["PRODUCTS_TABLE_NAME"]
    described = make_dynamodb_client(REGION, bench.endpoint).describe_table(TableName=table)
    indexes = indexes_of(described["Table"])
    proxy = RecordingProxy(bench.endpoint)
    replace_service(bench, "catalog", {"DYNAMODB_ENDPOINT_URL": proxy.url})
    try:

        def sample() -> dict[str, float]:
            seller = Seller(bench.client, "walmart", WRITE_UNIT_SYNC_SIZE)
            proxy.calls.clear()
            proxy.recording.set()
            sync_id = seller.start()
            run_all(bench, [(seller, sync_id)])
            proxy.recording.clear()
            written = int(seller.log(sync_id)["items_written"])
            lease = [call for call in proxy.calls if _takes_the_creation_lease(call)]
            products = [call for call in proxy.calls if call not in lease]
            return {
                "write_units_per_first_synced_product": write_units(products, indexes) / written,
                "creation_lease_write_units_per_first_synced_product": (
                    write_units(lease, indexes) / written
                ),
                "write_requests_per_first_synced_product": len(proxy.calls) / written,
                "items_written_per_first_synced_product": items_written(products) / written,
            }

        values = collect(sample)
    finally:
        replace_service(bench, "catalog", {"DYNAMODB_ENDPOINT_URL": bench.endpoint})
        proxy.close()
    units = {
        "write_units": "WCU/product",
        "creation_lease": "WCU/product",
        "write_requests": "calls/product",
        "items": "items/product",
    }
    for name, samples in values.items():
        unit = next(u for prefix, u in units.items() if name.startswith(prefix))
        bench.results.add(name, unit, samples)


def _takes_the_creation_lease(call: tuple[str, dict[str, Any]]) -> bool:
    """A put or delete of an organization's creation lease (services/catalog/leases.py): a
    cost per batch of creations, shown apart from the products' own."""
    _operation, params = call
    key = params.get("Item") or params.get("Key") or {}
    return str(key.get("PK", {}).get("S", "")).endswith("#LEASE")


# ---- the profile ----------------------------------------------------------------------------

# The library a sample's time goes to: the first one called below the deepest frame of our own
# code, so JSON that botocore parses counts as botocore's and a token our interceptor verifies
# as PyJWT's; with no frame of ours, the first library from the thread's root (gRPC's server).
LIBRARIES = {
    "botocore/": "DynamoDB client (boto3, botocore, urllib3)",
    "boto3/": "DynamoDB client (boto3, botocore, urllib3)",
    "urllib3/": "DynamoDB client (boto3, botocore, urllib3)",
    "http/client.py": "DynamoDB client (boto3, botocore, urllib3)",
    "grpc/": "gRPC (its compiled server and event-loop callbacks)",
    "google/protobuf/": "protobuf messages",
    "google/_upb/": "protobuf messages",
    "_message.abi3": "protobuf messages",
    "jwt/": "token verification (PyJWT, cryptography)",
    "cryptography/": "token verification (PyJWT, cryptography)",
    "logging/": "logging",
    "json/": "JSON",
}
OURS = "our code (services/, marketsync/)"
# What the interpreter itself runs: its own C code and the C library, never a library's.
INTERPRETER_FILES = ("libc.so", "libpython", "libm.so", "ld-linux")


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) from root to leaf of one line of py-spy's raw output."""
    frames = []
    for frame in stack.split(";"):
        function, _, where = frame.partition(" (")
        frames.append((function.strip(), where.rsplit(":", 1)[0].rstrip(")")))
    return frames


def _is_ours(file: str) -> bool:
    return ("services/" in file or "marketsync/" in file) and "/v1/" not in file


def _category(frames: list[tuple[str, str]]) -> str:
    ours = [i for i, (_, file) in enumerate(frames) if _is_ours(file)]
    for _, file in frames[ours[-1] + 1 if ours else 0 :]:
        for marker, category in LIBRARIES.items():
            if marker in file:
                return category
    if ours:
        return OURS
    if any("asyncio/" in file for _, file in frames):
        return "asyncio event loop"
    return "interpreter and threads (queue, threading, to_thread hand-offs)"


def _self_frame(frames: list[tuple[str, str]]) -> str:
    """Where a sample's own time is: its deepest Python function, or the compiled extension
    module it was in (native frames have no names there)."""
    for function, file in reversed(frames):
        if file.endswith(".py"):
            return f"{function} ({Path(file).name})"
        if ".so" in file and not any(name in file for name in INTERPRETER_FILES):
            return f"compiled {Path(file).name.split('.')[0]}"
    return "the interpreter"


def summarize_profile(raw: Path, requests: int) -> dict[str, Any]:
    """Where the sampled CPU went: by library, and our functions by inclusive share."""
    by_category: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in _frames(stack) if f[1]]
        if not frames:
            continue
        total += count
        by_category[_category(frames)] += count
        leaves[_self_frame(frames)] += count
        project = {
            f"{function} ({file.split('/main/', 1)[-1]})"
            for function, file in frames
            if _is_ours(file) and function != "<module>"
        }
        for name in project:
            ours[name] += count
    if not total:
        return {"samples": 0}

    def shares(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "requests": requests,
        "by_library_percent": shares(by_category, 12),
        "our_functions_inclusive_percent": shares(ours, 12),
        "leaf_functions_percent": shares(leaves, 12),
    }


def profile_catalog(bench: Bench, user: User, sku: str) -> None:
    """py-spy samples the catalog while a few clients keep GetProduct busy through Envoy."""
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        bench.results.facts["catalog_profile"] = {"error": "py-spy is not installed"}
        return
    raw = bench_dir() / "catalog-profile.txt"
    requests, errors = _profile(bench, user, sku, [str(py_spy), "--native"], raw)
    if errors is not None:
        # Native frames need unwinding information some systems lack: Python frames alone.
        requests, errors = _profile(bench, user, sku, [str(py_spy)], raw)
    if errors is not None:
        bench.results.facts["catalog_profile"] = {"error": errors}
        return
    summary = summarize_profile(raw, requests)
    summary["backend"] = bench.catalog_backend
    summary["seconds"] = PROFILE_SECONDS
    summary["clients"] = PROFILE_CLIENTS
    summary["raw"] = str(raw.relative_to(bench_dir().parent))
    bench.results.facts["catalog_profile"] = summary


def _profile(
    bench: Bench, user: User, sku: str, py_spy: list[str], raw: Path
) -> tuple[int, str | None]:
    """Requests served while py-spy recorded the catalog, and py-spy's error if it failed."""
    pid = bench.child("catalog").process.pid
    recorder = subprocess.Popen(
        [
            *(py_spy[0], "record", *py_spy[1:], "--pid", str(pid)),
            *("--duration", str(PROFILE_SECONDS)),
            # Only the thread holding the GIL: the catalog is one Python process, so that is
            # its CPU; the 32 worker threads waiting for work would otherwise fill the profile.
            *("--gil", "--rate", "100", "--format", "raw", "--output", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Counter[str]()
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=bench.stack.gateway_url, timeout=30) as client:
            while recorder.poll() is None:
                client.get(f"/api/products/{sku}", headers=user.headers).raise_for_status()
                with lock:
                    served["requests"] += 1

    clients = [threading.Thread(target=load) for _ in range(PROFILE_CLIENTS)]
    for client in clients:
        client.start()
    _, errors = recorder.communicate(timeout=PROFILE_SECONDS * 4 + 60)
    for client in clients:
        client.join()
    if recorder.returncode != 0 or not raw.exists():
        return served["requests"], errors.strip()[-400:] or f"py-spy exited {recorder.returncode}"
    return served["requests"], None


def run(bench: Bench, backend: str, *, once: bool) -> None:
    """Every catalog figure on one DynamoDB server; `once` adds those that do not depend on
    the server (write units, the profile)."""
    point_catalog(bench, backend)
    progress(f"catalog on {backend}: seeding a synced organization")
    user, sku = seed(bench)
    progress(f"catalog on {backend}: GetProduct latency and CPU")
    bench_reads(bench, user, sku)
    if once:
        progress(f"catalog on {backend}: profiling GetProduct for {PROFILE_SECONDS} s")
        profile_catalog(bench, user, sku)
    progress(f"catalog on {backend}: batch upserts through Envoy")
    bench_rest_upserts(bench, user)
    progress(f"catalog on {backend}: store against raw BatchWriteItem")
    bench_store_against_raw(bench)
    if once:
        progress(f"catalog on {backend}: write units of first syncs")
        bench_write_units(bench)
