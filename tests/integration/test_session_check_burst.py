"""What requests cost PostgreSQL: a burst with a token no service has seen yet costs auth one
session check, and GetMe one statement beside the check of its session.

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
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
import httpx
import pytest

from dev.stack import PYTHON, Child, Stack, free_port, spawn_gateway
from tests.health_check import serving
from tests.integration.conftest import Api
from tests.pg_statements import StatementLog

BURST = 32
# Longer than it takes to send the burst: every request arrives while the first check runs.
STATEMENT_DELAY_SECONDS = 0.3
SESSION_LOOKUP = "FROM sessions s JOIN organization_members m"
# What auth's housekeeping runs once a minute, whenever it falls due.
HOUSEKEEPING = ("UPDATE sync_logs", "DELETE FROM")


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
        _wait(partial(serving, auth_address), "the counted auth")
        _wait(partial(serving, catalog_address), "its catalog")
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


def test_get_me_asks_postgresql_once_beside_its_session_check(counted: Counted, api: Api) -> None:
    """GetMe is what a client asks on every page it opens: beside the check of its session
    (which auth, owning sessions, makes on every request), the user and their organizations
    come in one round trip to the database, which is Neon's network away in production."""
    registered = api.register(organization_name="Only Org")
    headers = {"authorization": f"Bearer {registered['token']}"}

    def get_me() -> dict[str, Any]:
        answer = httpx.get(f"{counted.gateway_url}/api/auth/me", headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    log = counted.statements
    log.wait_until_quiet()
    before = len(log.statements)
    me = get_me()
    log.wait_until_quiet()
    ran = [s for s in log.statements[before:] if not s.lstrip().startswith(HOUSEKEEPING)]
    assert len(ran) == 2, ran
    assert sum(SESSION_LOOKUP in statement for statement in ran) == 1, ran
    assert me["user"]["email"] == registered["user"]["email"]
    assert [(o["name"], o["role"]) for o in me["organizations"]] == [("Only Org", "owner")]
