"""Auth figures: what a burst of requests with a fresh token costs PostgreSQL, and how much
logins (bcrypt at production's cost) slow reads that have nothing to do with them."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import statistics
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType

import httpx

from tests.bench.catalog import rest_product
from tests.bench.figures import collect, progress
from tests.bench.support import PASSWORD, Bench, User, login, register, replace_service
from tests.pg_statements import StatementLog

BURST = 32
# What auth's housekeeping runs once a minute, whenever it falls due: not the burst's.
HOUSEKEEPING = ("UPDATE sync_logs", "DELETE FROM")
SESSION_LOOKUP = "FROM sessions"
CONCURRENT_LOGINS = 20
LOGINS_START_SECONDS = 60
# The logins under way when told to stop finish first: 20 queued for the hashing CPU.
LOGINS_END_SECONDS = 120
# Each way: the p99 is then the 20th slowest, so a few stray hiccups of a shared machine do not
# make it.
READS = 2000
# One setting gave 1.08 and 1.40 in two runs ten minutes apart with three samples: five make
# the median steadier, for about a minute more.
SAMPLES = 5
# Production's bcrypt cost (services/auth/passwords.py); the bench's stack registers at 4.
PRODUCTION_BCRYPT_ROUNDS = "12"


async def _burst(gateway_url: str, user: User) -> list[int]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.get("/api/products", params={"page_size": 1}, headers=user.headers)
                for _ in range(BURST)
            )
        )
    return [answer.status_code for answer in answers]


def bench_fresh_token_statements(bench: Bench) -> None:
    """32 requests at once with a token no service has seen: the statements PostgreSQL ran,
    noted by a proxy auth reaches the database through for this figure."""
    database = bench.stack.env["CRED_DATABASE_URL"]
    statements = StatementLog(database)
    replace_service(bench, "auth", {"CRED_DATABASE_URL": statements.conninfo})
    try:
        user = register(bench.client)

        def sample() -> dict[str, float]:
            fresh = login(bench.client, user.email)
            before = statements.wait_until_quiet()
            codes = asyncio.run(_burst(bench.stack.gateway_url, fresh))
            if codes != [200] * BURST:
                raise RuntimeError(f"the burst was answered {sorted(set(codes))}")
            statements.wait_until_quiet()
            ran = [
                s for s in statements.statements[before:] if not s.lstrip().startswith(HOUSEKEEPING)
            ]
            return {
                "pg_statements_32_requests_fresh_token": len(ran),
                "pg_session_lookups_32_requests_fresh_token": sum(SESSION_LOOKUP in s for s in ran),
            }

        values = collect(sample)
    finally:
        replace_service(bench, "auth", {"CRED_DATABASE_URL": database})
        statements.close()
    for name, samples in values.items():
        bench.results.add(name, "statements", samples)


async def _reads(client: httpx.AsyncClient, reader: User, sku: str) -> dict[str, list[float]]:
    """READS of each read, one after another: GetMe (auth) and GetProduct (catalog)."""
    paths = {"get_me": "/api/auth/me", "get_product": f"/api/products/{sku}"}
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(READS):
        for name, path in paths.items():
            started = time.perf_counter()
            answer = await client.get(path, headers=reader.headers)
            seconds[name].append(time.perf_counter() - started)
            answer.raise_for_status()
    return seconds


async def _keep_logging_in(client: httpx.AsyncClient, email: str, stop: EventType) -> list[float]:
    """Log in again and again until stopped; when each login ended (time.monotonic, the same
    clock in every process)."""
    ended = []
    while not stop.is_set():
        answer = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        answer.raise_for_status()
        ended.append(time.monotonic())
    return ended


def _logins_until_stopped(
    gateway_url: str,
    emails: list[str],
    started: EventType,
    stop: EventType,
    ended: Queue[list[float]],
) -> None:
    """A process of its own: every email logging in again and again until `stop`; then when
    each login ended, on `ended`."""

    async def all_of_them() -> list[float]:
        limits = httpx.Limits(max_connections=len(emails))
        async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=120) as client:
            logins = [
                asyncio.create_task(_keep_logging_in(client, email, stop)) for email in emails
            ]
            started.set()
            return [when for one in await asyncio.gather(*logins) for when in one]

    ended.put(asyncio.run(all_of_them()))


def _p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


def bench_reads_during_logins(bench: Bench) -> None:
    """Reads alone, then the same reads while 20 logins are always under way. The users are
    registered by an auth at production's bcrypt cost, so each login costs what it would."""
    rounds = bench.stack.env.get("BCRYPT_ROUNDS", "")
    replace_service(bench, "auth", {"BCRYPT_ROUNDS": PRODUCTION_BCRYPT_ROUNDS})
    try:
        users = [register(bench.client) for _ in range(CONCURRENT_LOGINS)]
        reader = register(bench.client)
        sku = rest_product(0)["sku"]
        bench.client.post(
            "/api/products:batchUpsert",
            json={"products": [rest_product(0)]},
            headers=reader.headers,
        ).raise_for_status()

        async def both() -> dict[str, float]:
            async with httpx.AsyncClient(base_url=bench.stack.gateway_url, timeout=60) as client:
                alone = await _reads(client, reader, sku)
                # The logins come from another process, as they would from other clients: in
                # this one, handling their answers could delay reading the reads' own.
                spawn = multiprocessing.get_context("spawn")
                started, stop, ended = spawn.Event(), spawn.Event(), spawn.Queue()
                logins = spawn.Process(
                    target=_logins_until_stopped,
                    args=(bench.stack.gateway_url, [u.email for u in users], started, stop, ended),
                    daemon=True,
                )
                logins.start()
                try:
                    if not started.wait(LOGINS_START_SECONDS):
                        raise RuntimeError("the login process did not start")
                    await asyncio.sleep(0.5)  # every login under way before the reads start
                    reads_started = time.monotonic()
                    busy = await _reads(client, reader, sku)
                    reads_ended = time.monotonic()
                finally:
                    stop.set()
                try:
                    when = ended.get(timeout=LOGINS_END_SECONDS)
                except queue.Empty:
                    raise RuntimeError(
                        f"the login process said nothing (exit code {logins.exitcode})"
                    ) from None
                logins.join(LOGINS_END_SECONDS)
                # Only logins that ended while the reads ran: the 20 still queued when they
                # stop would double the rate.
                done = sum(reads_started <= ended <= reads_ended for ended in when)
            return {
                "get_me_p99_ms_alone": _p99(alone["get_me"]),
                "get_me_p99_ms_during_20_logins": _p99(busy["get_me"]),
                "get_me_p50_ms_during_20_logins": statistics.median(busy["get_me"]) * 1000,
                "get_product_p99_ms_alone": _p99(alone["get_product"]),
                "get_product_p99_ms_during_20_logins": _p99(busy["get_product"]),
                "logins_per_s_during_reads": done / (reads_ended - reads_started),
            }

        values = collect(lambda: asyncio.run(both()), samples=SAMPLES)
    finally:
        replace_service(bench, "auth", {"BCRYPT_ROUNDS": rounds})
    for name, samples in values.items():
        bench.results.add(name, "logins/s" if name.startswith("logins") else "ms", samples)


def run(bench: Bench) -> None:
    progress("auth: statements of a burst with a fresh token")
    bench_fresh_token_statements(bench)
    progress("auth: reads during 20 concurrent logins at bcrypt cost 12")
    bench_reads_during_logins(bench)
