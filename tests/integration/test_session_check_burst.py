"""A burst of requests with a token no service has seen yet costs auth one session check.

Catalog asks auth about a session once per 30 s; requests that arrive while that question is
open wait for its answer instead of asking again, and auth hands out pooled connections
without a round trip to test them. To count what reaches PostgreSQL, this module starts a
second auth whose database connections pass through a proxy that notes every statement, a
catalog that asks that auth, and an Envoy in front of both. The proxy holds each statement back
for a moment, so the burst's requests are all waiting on the first check before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from marketsync.devstack import PYTHON, Child, Stack, free_port, spawn_gateway
from tests.integration.conftest import Api

BURST = 32
# Longer than it takes to send the burst: every request arrives while the first check runs.
STATEMENT_DELAY_SECONDS = 0.3
SESSION_LOOKUP = "FROM sessions s JOIN organization_members m"
# What auth's housekeeping runs once a minute, whenever it falls due.
HOUSEKEEPING = ("UPDATE sync_logs", "DELETE FROM")


class StatementLog:
    """A TCP proxy to PostgreSQL noting each statement its clients run: every simple query,
    and every extended-protocol Execute, by the text of the statement it binds."""

    def __init__(self, conninfo: str) -> None:
        self.statements: list[str] = []
        self.delay = 0.0
        upstream = conninfo_to_dict(conninfo)
        self._host = str(upstream.get("host") or "localhost")
        self._port = int(upstream.get("port") or 5432)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result()
        port = self._server.sockets[0].getsockname()[1]
        # No TLS or GSS negotiation, so the first message is the startup message.
        self.conninfo = make_conninfo(
            conninfo, host="127.0.0.1", port=port, sslmode="disable", gssencmode="disable"
        )

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def wait_until_quiet(self, seconds: float = 1.0, timeout: float = 30.0) -> None:
        """Until no statement has run for `seconds` (start-up's migrations and housekeeping)."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.statements) != seen:
            assert time.monotonic() < deadline, "the database never went quiet"
            seen = len(self.statements)
            time.sleep(seconds)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(self, client: asyncio.StreamReader, answer: asyncio.StreamWriter) -> None:
        server, request = await self._open_upstream()
        answers = asyncio.create_task(_copy(server, answer))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await self._relay(client, request)
        request.close()
        await asyncio.gather(answers, return_exceptions=True)
        answer.close()

    async def _relay(self, client: asyncio.StreamReader, server: asyncio.StreamWriter) -> None:
        prepared: dict[bytes, str] = {}
        portals: dict[bytes, str] = {}
        startup_length = await client.readexactly(4)
        server.write(startup_length + await client.readexactly(_length(startup_length) - 4))
        while True:
            header = await client.readexactly(5)
            body = await client.readexactly(_length(header[1:]) - 4)
            kind = header[:1]
            if kind == b"P":
                name, query = body.split(b"\0", 2)[:2]
                prepared[name] = query.decode()
            elif kind == b"B":
                portal, name = body.split(b"\0", 2)[:2]
                portals[portal] = prepared[name]
            elif kind in (b"Q", b"E"):
                name = body.split(b"\0", 1)[0]
                self.statements.append(name.decode() if kind == b"Q" else portals[name])
                await asyncio.sleep(self.delay)
            server.write(header + body)
            await server.drain()


def _length(field: bytes) -> int:
    return int.from_bytes(field, "big")


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()


@dataclass(frozen=True)
class Counted:
    gateway_url: str
    statements: StatementLog


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.RpcError, httpx.HTTPError):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2
        )
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def counted(stack: Stack) -> Iterator[Counted]:
    statements = StatementLog(stack.env["CRED_DATABASE_URL"])
    auth_port, catalog_port, gateway_port = free_port(), free_port(), free_port()
    auth_address, catalog_address = f"127.0.0.1:{auth_port}", f"127.0.0.1:{catalog_port}"
    children: list[Child] = []
    try:
        children.append(
            stack.spawn(
                "auth-counted",
                [PYTHON, "-m", "services.auth.server"],
                {
                    **stack.private_env.get("auth", {}),
                    "GRPC_PORT": str(auth_port),
                    "CRED_DATABASE_URL": statements.conninfo,
                },
            )
        )
        children.append(
            stack.spawn(
                "catalog-counted",
                [PYTHON, "-m", "services.catalog.server"],
                {
                    **stack.private_env["catalog"],
                    "GRPC_PORT": str(catalog_port),
                    "AUTH_ADDRESS": auth_address,
                },
            )
        )
        _wait(lambda: _serving(auth_address), "the counted auth")
        _wait(lambda: _serving(catalog_address), "its catalog")
        upstreams = {
            "auth": auth_address,
            "catalog": catalog_address,
            "sync": stack.env["SYNC_ADDRESS"],
        }
        children.append(spawn_gateway(stack, "gw-counted", gateway_port, upstreams))
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        _wait(lambda: httpx.get(f"{gateway_url}/healthz").status_code == 200, "its Envoy")
        yield Counted(gateway_url, statements)
    finally:
        for child in reversed(children):
            child.stop()
            stack.children.remove(child)
        statements.close()


async def _burst(gateway_url: str, token: str) -> list[int]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.get("/api/products", headers={"authorization": f"Bearer {token}"})
                for _ in range(BURST)
            )
        )
    return [answer.status_code for answer in answers]


def _statements_of(counted: Counted, burst: Callable[[], list[int]]) -> list[str]:
    """What the burst ran on PostgreSQL; housekeeping that fell due meanwhile is not its own."""
    log = counted.statements
    log.wait_until_quiet()
    before = len(log.statements)
    assert burst() == [200] * BURST
    log.wait_until_quiet()
    return [s for s in log.statements[before:] if not s.lstrip().startswith(HOUSEKEEPING)]


def test_a_burst_with_a_fresh_token_checks_the_session_once(counted: Counted, api: Api) -> None:
    token = api.register()["token"]

    def burst() -> list[int]:
        return asyncio.run(_burst(counted.gateway_url, token))

    counted.statements.delay = STATEMENT_DELAY_SECONDS
    try:
        fresh = _statements_of(counted, burst)
    finally:
        counted.statements.delay = 0.0
    ran = f"{len(fresh)} statements: {Counter(fresh)}"
    # Each CheckSession that reaches auth looks the session up once.
    assert sum(SESSION_LOOKUP in s for s in fresh) == 1, ran
    assert len(fresh) <= 2, ran
    # Now catalog knows the answer for 30 s.
    assert _statements_of(counted, burst) == []
