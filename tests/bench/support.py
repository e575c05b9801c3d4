"""The running stack as the bench uses it: sellers, syncs, rate-limit floors, and swapping one
service process for another started differently (another DynamoDB server, a proxy in front of
PostgreSQL, production's bcrypt cost)."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import jwt
import psycopg

from dev.sandbox.catalogue import amazon_catalogue
from dev.stack import Child, Stack
from services.sync.marketplaces import AMAZON_RATES, WALMART_RATES, Rate
from services.sync.marketplaces.amazon.client import PAGE_SIZE as AMAZON_PAGE_SIZE
from services.sync.marketplaces.amazon.enrichment import CATALOG_IDENTIFIERS_PER_CALL
from services.sync.marketplaces.walmart import PAGE_LIMIT as WALMART_PAGE_LIMIT
from tests import health_check
from tests.bench.figures import Results

FINAL = ("succeeded", "partial", "failed")
PASSWORD = "bench password"
SELLER_THREADS = 8
SERVING_TIMEOUT_SECONDS = 60.0
# How often the bench looks whether syncs ended; when they did comes from their logs.
POLL_SECONDS = 0.05
SYNC_DEADLINE_SECONDS = 600


@dataclass
class Bench:
    """One run: the stack, a REST client of its Envoy, the DynamoDB servers by name, and which
    of them the stack's catalog is using now."""

    stack: Stack
    client: httpx.Client
    results: Results
    dynamodb: dict[str, str] = field(default_factory=dict)
    catalog_backend: str = "moto"

    @property
    def endpoint(self) -> str:
        return self.dynamodb[self.catalog_backend]

    def child(self, name: str) -> Child:
        return next(c for c in self.stack.children if c.name == name)


@dataclass(frozen=True)
class User:
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    @property
    def organization_id(self) -> int:
        return int(jwt.decode(self.token, options={"verify_signature": False})["org"])


def register(client: httpx.Client) -> User:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    answer = client.post(
        "/api/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "name": "Bench",
            "organization_name": "Bench Org",
        },
    )
    answer.raise_for_status()
    return User(email, answer.json()["token"])


def login(client: httpx.Client, email: str) -> User:
    """A new session, so a token no service has seen yet."""
    answer = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    answer.raise_for_status()
    return User(email, answer.json()["token"])


class Seller:
    """A new organization with marketplace credentials of its own sandbox account, whose
    catalogue holds `size` products (the sandbox reads the account name's `-N` suffix)."""

    def __init__(self, client: httpx.Client, marketplace: str, size: int) -> None:
        self.client = client
        self.marketplace = marketplace
        self.size = size
        self.user = register(client)
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

    @property
    def headers(self) -> dict[str, str]:
        return self.user.headers

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

    def floor(self) -> float:
        return sync_floor(self.marketplace, self.size, self.account)


def sellers(client: httpx.Client, marketplace: str, size: int, count: int) -> list[Seller]:
    """`count` sellers, made a few at a time: registering is most of a small sync's set-up."""
    with ThreadPoolExecutor(SELLER_THREADS) as pool:
        return list(pool.map(lambda _: Seller(client, marketplace, size), range(count)))


def start_all(group: list[Seller]) -> list[tuple[Seller, str]]:
    """Each seller starts its sync at the same moment, as organizations of their own would."""
    with ThreadPoolExecutor(SELLER_THREADS) as pool:
        return list(zip(group, pool.map(Seller.start, group), strict=True))


def run_all(
    bench: Bench, runs: list[tuple[Seller, str]], on_poll: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """Seconds from now until each sync ended, by sync id, from the logs' own `finished_at`;
    every sync must succeed, and end within SYNC_DEADLINE_SECONDS: a bench that hangs tells
    nobody anything. The logs are read from auth's database, one query for all of them every
    POLL_SECONDS: following 120 syncs through the API would be 2,400 requests a second on the
    very CPUs the syncs run on."""
    started = time.time()
    ids = [int(sync_id) for _, sync_id in runs]
    ended: dict[str, float] = {}
    with psycopg.connect(bench.stack.env["CRED_DATABASE_URL"], autocommit=True) as conn:
        while len(ended) < len(runs):
            if time.time() - started > SYNC_DEADLINE_SECONDS:
                raise RuntimeError(f"{len(runs) - len(ended)} syncs still running after 10 min")
            on_poll()
            rows = conn.execute(
                "SELECT id::text, status, attempt, error, finished_at FROM sync_logs"
                " WHERE id = ANY(%s)",
                (ids,),
            ).fetchall()
            for sync_id, status, attempt, error, finished_at in rows:
                if status == "queued" and attempt:
                    # Queued again after a failed run: the bench wants every run to succeed.
                    raise RuntimeError(f"sync {sync_id} failed and was queued again: {error}")
                if status in FINAL:
                    if status != "succeeded":
                        raise RuntimeError(f"sync {sync_id} ended {status}: {error}")
                    ended[sync_id] = finished_at.timestamp() - started
            time.sleep(POLL_SECONDS)
    return ended


# ---- rate-limit floors ----------------------------------------------------------------------


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


def sync_floor(marketplace: str, size: int, account: str) -> float:
    """The least a first sync can take at the documented rates: its slowest operation's calls,
    all paced (Walmart's items and inventory run side by side; so do Amazon's report, Catalog
    Items and FBA inventory)."""
    if marketplace == "walmart":
        pages = math.ceil(size / WALMART_PAGE_LIMIT)
        return max(
            floor_seconds(pages, WALMART_RATES[operation])
            for operation in ("getAllItems", "getInventories")
        )
    return floor_seconds(amazon_enrichment_calls(account), AMAZON_RATES["searchCatalogItems"])


# ---- swapping processes ---------------------------------------------------------------------


def serving(address: str) -> bool:
    try:
        return health_check.serving(address)
    except grpc.RpcError:
        return False


def wait_serving(address: str, child: Child) -> None:
    deadline = time.monotonic() + SERVING_TIMEOUT_SECONDS
    while not serving(address):
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} is not serving at {address}")
        time.sleep(0.1)


# Who calls whom: a replaced service's callers are started again too. A gRPC channel whose
# server went away retries connecting with a backoff, and a call made during that backoff fails
# at once (a sync then fails its catalog write and waits 30 s to be retried).
CALLERS = {"auth": ("catalog", "sync"), "catalog": ("sync",), "sync": ()}
# A path Envoy routes to each service that the service itself answers 401 without a token.
PROBES = {"auth": "/api/auth/me", "catalog": "/api/products", "sync": "/api/sync/logs"}


def _restart(bench: Bench, name: str, env: Mapping[str, str]) -> Child:
    old = bench.child(name)
    old.stop()
    fresh = bench.stack.spawn(name, old.argv, {**old.extra_env, **env})
    children = bench.stack.children
    children.remove(fresh)
    children[children.index(old)] = fresh
    return fresh


def _routed(bench: Bench, name: str) -> None:
    """Until Envoy reaches the service again: its own 401, not Envoy's 503."""
    deadline = time.monotonic() + SERVING_TIMEOUT_SECONDS
    while bench.client.get(PROBES[name]).status_code != 401:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Envoy does not reach the restarted {name}")
        time.sleep(0.2)


def replace_service(bench: Bench, name: str, env: Mapping[str, str]) -> Child:
    """Stop the stack's `name` (auth, catalog, sync) and start it again on the same port with
    `env` on top of what it had, then its callers afresh; Envoy reaches it as before."""
    fresh = _restart(bench, name, env)
    restarted = [(name, fresh)] + [
        (caller, _restart(bench, caller, {})) for caller in CALLERS[name]
    ]
    for service, child in restarted:
        wait_serving(f"127.0.0.1:{child.extra_env['GRPC_PORT']}", child)
        _routed(bench, service)
    return fresh


def point_catalog(bench: Bench, backend: str) -> None:
    """Restart the catalog against another DynamoDB server (it creates its table there)."""
    if bench.catalog_backend == backend:
        return
    replace_service(
        bench,
        "catalog",
        {"DYNAMODB_ENDPOINT_URL": bench.dynamodb[backend], "CREATE_PRODUCTS_TABLE": "true"},
    )
    bench.catalog_backend = backend
