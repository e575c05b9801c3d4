"""Speed and memory figures of the running stack (`make bench`).

The machines are shared and noisy, so the figures that matter are ratios measured in one run:
REST through Envoy against direct gRPC, an unchanged re-upsert against the first upsert, our
store against raw BatchWriteItem on the same DynamoDB server, and the sync process's memory
for a small catalogue against one several times larger (flat means products stream through).
"""

from __future__ import annotations

import asyncio
import os
import statistics
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
from marketsync.devstack import Stack, free_port, start_stack
from services.catalog.domain import ProductInput
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.store import ProductStore
from services.catalog.tables import ensure_table

LATENCY_CALLS = 300


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
            if log["status"] != "running":
                break
            time.sleep(0.05)
        assert log["status"] == "succeeded", log
        figures[f"sync_{size}_products_per_s"] = size / (time.perf_counter() - started)
        figures[f"sync_{size}_rss_growth_mb"] = (peak - before) / 2**20
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir, open(os.devnull, "w") as quiet:
        stack = start_stack(
            Path(data_dir),
            {"GATEWAY_PORT": str(free_port()), "SYNC_SCHEDULE_INTERVAL_SECONDS": "0"},
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
    }
    print("figure                                   value")
    for name, value in figures.items():
        print(f"{name:<40} {value:10.2f}")
    print("\nratio (one run)                          value")
    for name, value in ratios.items():
        print(f"{name:<40} {value:10.2f}")


if __name__ == "__main__":
    main()
