"""Speed and memory figures of the running stack (`make bench`).

The machines are shared and noisy, so the figures that matter are ratios measured in one run:
REST through Envoy against direct gRPC, an unchanged re-upsert against the first upsert, our
store against raw BatchWriteItem on the same DynamoDB server, the sync process's memory for a
small catalogue against one several times larger (flat means products stream through), each
marketplace's sync time against the floor its slowest rate limit sets, 120 organizations
syncing at once on one replica against one alone, and two sync replicas against one.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
from grpc import aio

from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.devstack import Child, Stack, free_port, start_stack
from marketsync.sandbox.catalogue import amazon_catalogue
from services.catalog.domain import ProductInput
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.store import ProductStore
from services.catalog.tables import ensure_table
from services.sync.marketplaces import AMAZON_RATES, WALMART_RATES, Rate
from services.sync.marketplaces.amazon import CATALOG_IDENTIFIERS_PER_CALL
from services.sync.marketplaces.amazon import PAGE_SIZE as AMAZON_PAGE_SIZE
from services.sync.marketplaces.walmart import PAGE_LIMIT as WALMART_PAGE_LIMIT

LATENCY_CALLS = 300
FINAL = ("succeeded", "partial", "failed")
WALMART_FLOOR_SIZE = 10_000
AMAZON_FLOOR_SIZE = 2_000
CONCURRENT_ORGS = 120
CONCURRENT_SIZE = 100
MANY_SYNCS = 500
SCALE_OUT_SYNCS = 36
SCALE_OUT_SIZE = 200  # 4 item pages, each answered after SCALE_OUT_DELAY
SCALE_OUT_DELAY = 0.5
SCALE_OUT_CAPACITY = 6
# The bench's replica holds every concurrent sync the bench starts.
REPLICA_CAPACITY = 600


def product(n: int, price: str = "19.99") -> dict[str, Any]:
    return {
        "sku": f"BENCH-{n:06d}",
        "title": f"Bench product {n} with a title of ordinary length",
        "description": "A description of about a hundred characters, as product feeds often have. "
        * 2,
        "brand": "Bench",
        "category": "Tools",
        "price": price,
        "currency": "USD",
        "inventory_quantity": n % 50,
    }


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def register(client: httpx.Client) -> str:
    answer = client.post(
        "/api/auth/register",
        json={
            "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
            "password": "bench password",
            "name": "Bench",
            "organization_name": "Bench Org",
        },
    )
    answer.raise_for_status()
    return answer.json()["token"]


def bench_batch_upsert(client: httpx.Client, token: str) -> dict[str, float]:
    headers = {"authorization": f"Bearer {token}"}
    batch = [product(n) for n in range(1000)]

    def upsert() -> None:
        answer = client.post("/api/products:batchUpsert", json={"products": batch}, headers=headers)
        answer.raise_for_status()

    first = timed(upsert)
    again = timed(upsert)
    return {"first_upsert_items_per_s": 1000 / first, "unchanged_upsert_items_per_s": 1000 / again}


def bench_latency(stack: Stack, client: httpx.Client, token: str) -> dict[str, float]:
    headers = {"authorization": f"Bearer {token}"}
    rest = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        client.get("/api/products/BENCH-000001", headers=headers).raise_for_status()
        rest.append(time.perf_counter() - started)

    async def direct() -> list[float]:
        async with aio.insecure_channel(stack.env["CATALOG_ADDRESS"]) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            request = catalog_pb2.GetProductRequest(sku="BENCH-000001")
            metadata = (("authorization", f"Bearer {token}"),)
            samples = []
            for _ in range(LATENCY_CALLS):
                started = time.perf_counter()
                await stub.GetProduct(request, metadata=metadata)
                samples.append(time.perf_counter() - started)
            return samples

    grpc_samples = asyncio.run(direct())
    return {
        "rest_p50_ms": statistics.median(rest) * 1000,
        "grpc_p50_ms": statistics.median(grpc_samples) * 1000,
        "dynamodb_query_p50_ms": _raw_read_p50(stack, token) * 1000,
    }


def _raw_read_p50(stack: Stack, token: str) -> float:
    """The same read GetProduct makes, straight to the DynamoDB server: the floor under it."""
    client = make_dynamodb_client("us-east-1", stack.env["DYNAMODB_ENDPOINT_URL"])
    organization = jwt.decode(token, options={"verify_signature": False})["org"]
    pk = f"ORG#{organization}#PRODUCT#BENCH-000001"
    samples = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        client.query(
            TableName=stack.env["PRODUCTS_TABLE_NAME"],
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_store_overhead(stack: Stack) -> dict[str, float]:
    client = make_dynamodb_client("us-east-1", stack.env["DYNAMODB_ENDPOINT_URL"])
    ours, raw = f"bench-ours-{uuid.uuid4().hex[:6]}", f"bench-raw-{uuid.uuid4().hex[:6]}"
    ensure_table(client, ours)
    ensure_table(client, raw)
    store = ProductStore(client, ours, b"bench-page-token-key-0123456789")
    writes = [
        ProductInput(sku=f"S{n:05d}", title="t" * 60, price=Decimal("9.99"), currency="USD")
        for n in range(1000)
    ]
    store_seconds = timed(lambda: store.batch_upsert(1, writes))
    items = [
        {
            "PK": {"S": f"ORG#1#PRODUCT#S{n:05d}"},
            "SK": {"S": "METADATA"},
            "title": {"S": "t" * 60},
            "price": {"N": "9.99"},
        }
        for n in range(1000)
    ]

    def raw_writes() -> None:
        for start in range(0, len(items), 25):
            client.batch_write_item(
                RequestItems={raw: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
            )

    raw_seconds = timed(raw_writes)
    return {
        "store_items_per_s": 1000 / store_seconds,
        "raw_batch_write_items_per_s": 1000 / raw_seconds,
    }


def bench_sync(stack: Stack, client: httpx.Client) -> dict[str, float]:
    sync_process = next(c.process for c in stack.children if c.name == "sync")
    figures: dict[str, float] = {}
    for size in (500, 2500):
        token = register(client)
        headers = {"authorization": f"Bearer {token}"}
        credentials = {
            "client_id": f"bench-{uuid.uuid4().hex[:6]}-{size}",
            "client_secret": "s" * 12,
        }
        client.put(
            "/api/credentials/walmart", json={"credentials": credentials}, headers=headers
        ).raise_for_status()
        before = psutil.Process(sync_process.pid).memory_info().rss
        peak = before
        started = time.perf_counter()
        sync_id = client.post("/api/sync", json={"marketplace": "walmart"}, headers=headers).json()[
            "sync_id"
        ]
        while True:
            peak = max(peak, psutil.Process(sync_process.pid).memory_info().rss)
            log = client.get(f"/api/sync/{sync_id}", headers=headers).json()
            if log["status"] in FINAL:
                break
            time.sleep(0.05)
        assert log["status"] == "succeeded", log
        figures[f"sync_{size}_products_per_s"] = size / (time.perf_counter() - started)
        figures[f"sync_{size}_rss_growth_mb"] = (peak - before) / 2**20
    return figures


class Seller:
    """A new organization with marketplace credentials of its own sandbox account."""

    def __init__(self, client: httpx.Client, marketplace: str, size: int) -> None:
        self.client = client
        self.marketplace = marketplace
        self.headers = {"authorization": f"Bearer {register(client)}"}
        self.account = f"bench-{uuid.uuid4().hex[:8]}-{size}"
        fields = (
            {"client_id": self.account, "client_secret": "s" * 12}
            if marketplace == "walmart"
            else {
                "refresh_token": f"Atzr|{self.account}",
                "lwa_app_id": "amzn1.application-oa2-client.bench",
                "lwa_client_secret": "s" * 12,
                "seller_id": "A2BENCH",
            }
        )
        client.put(
            f"/api/credentials/{marketplace}", json={"credentials": fields}, headers=self.headers
        ).raise_for_status()
        if marketplace == "amazon":
            self.account = fields["refresh_token"]

    def start(self) -> str:
        answer = self.client.post(
            "/api/sync", json={"marketplace": self.marketplace}, headers=self.headers
        )
        answer.raise_for_status()
        return str(answer.json()["sync_id"])

    def log(self, sync_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/sync/{sync_id}", headers=self.headers)
        answer.raise_for_status()
        return dict(answer.json())


def run_all(
    runs: list[tuple[Seller, str]], on_poll: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """Seconds from now until each sync ended, by sync id; every sync must succeed."""
    started = time.perf_counter()
    ended: dict[str, float] = {}
    while len(ended) < len(runs):
        on_poll()
        for seller, sync_id in runs:
            if sync_id in ended:
                continue
            log = seller.log(sync_id)
            if log["status"] in FINAL:
                assert log["status"] == "succeeded", log
                ended[sync_id] = time.perf_counter() - started
        time.sleep(0.2)
    return ended


def floor_seconds(calls: int, rate: Rate) -> float:
    """The least time `calls` calls take at a rate: the burst goes at once, the rest paced."""
    return max(0, calls - rate.burst) / rate.per_second


def amazon_enrichment_calls(refresh_token: str) -> int:
    """Catalog Items calls a first sync makes: per page of listings, its ASINs 20 a call."""
    listings = amazon_catalogue(refresh_token)
    calls = 0
    for start in range(0, len(listings), AMAZON_PAGE_SIZE):
        asins = {listing.asin for listing in listings[start : start + AMAZON_PAGE_SIZE]}
        calls += math.ceil(len(asins - {""}) / CATALOG_IDENTIFIERS_PER_CALL)
    return calls


def bench_sync_floors(client: httpx.Client) -> dict[str, float]:
    """A Walmart and an Amazon sync at the documented rates, side by side (separate accounts
    share no bucket), each against the floor set by its slowest operation."""
    walmart = Seller(client, "walmart", WALMART_FLOOR_SIZE)
    amazon = Seller(client, "amazon", AMAZON_FLOOR_SIZE)
    runs = [(walmart, walmart.start()), (amazon, amazon.start())]
    ended = run_all(runs)
    walmart_pages = math.ceil(WALMART_FLOOR_SIZE / WALMART_PAGE_LIMIT)
    walmart_floor = max(
        floor_seconds(walmart_pages, WALMART_RATES[operation])
        for operation in ("getAllItems", "getInventories")
    )
    amazon_floor = floor_seconds(
        amazon_enrichment_calls(amazon.account), AMAZON_RATES["searchCatalogItems"]
    )
    return {
        "walmart_10k_sync_s": ended[runs[0][1]],
        "walmart_10k_floor_s": walmart_floor,
        "amazon_2k_sync_s": ended[runs[1][1]],
        "amazon_2k_floor_s": amazon_floor,
    }


def raw_write_seconds(stack: Stack, products: int) -> float:
    """BatchWriteItem of one small item per product, 25 a call: the floor under storing them."""
    client = make_dynamodb_client("us-east-1", stack.env["DYNAMODB_ENDPOINT_URL"])
    table = f"bench-raw-sync-{uuid.uuid4().hex[:6]}"
    ensure_table(client, table)
    items = [
        {"PK": {"S": f"ORG#1#PRODUCT#S{n:06d}"}, "SK": {"S": "METADATA"}, "title": {"S": "t" * 60}}
        for n in range(products)
    ]

    def writes() -> None:
        for start in range(0, len(items), 25):
            client.batch_write_item(
                RequestItems={
                    table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
                }
            )

    return timed(writes)


def _sync_process(stack: Stack) -> psutil.Process:
    return psutil.Process(next(c.process for c in stack.children if c.name == "sync").pid)


def bench_concurrent_syncs(stack: Stack, client: httpx.Client) -> dict[str, float]:
    """120 organizations start a 100-product Amazon sync at once on one replica, against one
    alone; then 500 small Walmart syncs at once. Threads are sampled all along."""
    sync_process = _sync_process(stack)
    threads = [sync_process.num_threads()]

    def sample() -> None:
        threads.append(sync_process.num_threads())

    alone = Seller(client, "amazon", CONCURRENT_SIZE)
    [alone_seconds] = run_all([(alone, alone.start())], sample).values()
    sellers = [Seller(client, "amazon", CONCURRENT_SIZE) for _ in range(CONCURRENT_ORGS)]
    runs = [(seller, seller.start()) for seller in sellers]
    all_seconds = max(run_all(runs, sample).values())
    raw = raw_write_seconds(stack, CONCURRENT_ORGS * CONCURRENT_SIZE)

    many = [Seller(client, "walmart", 10) for _ in range(MANY_SYNCS)]
    many_runs = [(seller, seller.start()) for seller in many]
    many_seconds = max(run_all(many_runs, sample).values())
    return {
        "amazon_100_alone_s": alone_seconds,
        "amazon_100_x120_at_once_s": all_seconds,
        "raw_write_12k_products_s": raw,
        "walmart_10_x500_at_once_s": many_seconds,
        "sync_threads_max": max(threads),
    }


def bench_scale_out(stack: Stack, client: httpx.Client) -> dict[str, float]:
    """The same batch of slow syncs (the sandbox's delay switch) on one replica, then on two,
    each running at most SCALE_OUT_CAPACITY at once."""
    port = stack.env["SYNC_ADDRESS"].rsplit(":", 1)[1]
    [main] = [c for c in stack.children if c.name == "sync"]
    main.stop()
    stack.children.remove(main)
    capacity = {
        **stack.private_env["sync"],
        "SYNC_MAX_CONCURRENT": str(SCALE_OUT_CAPACITY),
        # Syncs are queued through one replica; the other finds them by polling.
        "SYNC_CLAIM_INTERVAL_SECONDS": "0.5",
    }
    argv = [sys.executable, "-m", "services.sync.server"]
    replicas: list[Child] = [stack.spawn("sync", argv, {"GRPC_PORT": port, **capacity})]
    time.sleep(3)

    def batch() -> float:
        sellers = [Seller(client, "walmart", SCALE_OUT_SIZE) for _ in range(SCALE_OUT_SYNCS)]
        for seller in sellers:
            httpx.post(
                f"{stack.env['WALMART_API_BASE_URL']}/_sandbox/faults",
                json={"account": seller.account, "delay_seconds": {"getAllItems": SCALE_OUT_DELAY}},
            ).raise_for_status()
        return max(run_all([(seller, seller.start()) for seller in sellers]).values())

    one = batch()
    replicas.append(stack.spawn("sync-2", argv, {"GRPC_PORT": "0", **capacity}))
    time.sleep(3)
    two = batch()
    return {"scale_out_one_replica_s": one, "scale_out_two_replicas_s": two}


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir, open(os.devnull, "w") as quiet:
        stack = start_stack(
            Path(data_dir),
            {
                "GATEWAY_PORT": str(free_port()),
                "SYNC_SCHEDULE_INTERVAL_SECONDS": "0",
                "BCRYPT_ROUNDS": "4",
                "SYNC_MAX_CONCURRENT": str(REPLICA_CAPACITY),
            },
            log_sink=quiet,
        )
        # This process talks to the embedded DynamoDB server too, with the stack's credentials.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, stack.env[name])
        try:
            with httpx.Client(base_url=stack.gateway_url, timeout=120) as client:
                token = register(client)
                figures = bench_batch_upsert(client, token)
                figures |= bench_latency(stack, client, token)
                figures |= bench_store_overhead(stack)
                figures |= bench_sync(stack, client)
                figures |= bench_sync_floors(client)
                figures |= bench_concurrent_syncs(stack, client)
                figures |= bench_scale_out(stack, client)
        finally:
            stack.stop()
    ratios = {
        "unchanged / first upsert speed": figures["unchanged_upsert_items_per_s"]
        / figures["first_upsert_items_per_s"],
        "REST via Envoy / direct gRPC p50": figures["rest_p50_ms"] / figures["grpc_p50_ms"],
        "direct gRPC / its DynamoDB read p50": figures["grpc_p50_ms"]
        / figures["dynamodb_query_p50_ms"],
        "store / raw BatchWriteItem speed": figures["store_items_per_s"]
        / figures["raw_batch_write_items_per_s"],
        "sync RSS growth 2500 / 500": figures["sync_2500_rss_growth_mb"]
        / max(figures["sync_500_rss_growth_mb"], 0.1),
        "Walmart 10k sync / its floor (goal <= 1.1)": figures["walmart_10k_sync_s"]
        / figures["walmart_10k_floor_s"],
        "Amazon 2k sync / its floor (goal <= 1.1)": figures["amazon_2k_sync_s"]
        / figures["amazon_2k_floor_s"],
        "120 at once / (2 x alone + raw writes) (goal <= 1)": figures["amazon_100_x120_at_once_s"]
        / (2 * figures["amazon_100_alone_s"] + figures["raw_write_12k_products_s"]),
        "one replica / two replicas (goal ~2)": figures["scale_out_one_replica_s"]
        / figures["scale_out_two_replicas_s"],
    }
    print("figure                                   value")
    for name, value in figures.items():
        print(f"{name:<40} {value:10.2f}")
    print("\nratio (one run)                          value")
    for name, value in ratios.items():
        print(f"{name:<40} {value:10.2f}")


if __name__ == "__main__":
    main()
