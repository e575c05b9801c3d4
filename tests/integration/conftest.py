"""The running stack, started once per test session on free ports: real PostgreSQL (pgserver),
the moto DynamoDB server, the sandbox marketplace, auth, catalog, sync and Envoy.

Tests speak REST through Envoy as a client would, or gRPC to a service as another service would.
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev.stack import Stack, free_port, start_stack
from tests.integration.trace_collector import TraceCollector

_unique = itertools.count(1)


class LogTail(io.TextIOBase):
    """Keeps the stack's last lines, printed when the session fails to start, and hands every
    line to the listeners a test adds while it needs them all (attack_support.LogCapture)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.listeners: list[Callable[[str], None]] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        del self.lines[:-400]
        # A copy: a test may add or remove its listener while relay threads write.
        for listener in tuple(self.listeners):
            listener(text)
        return len(text)


@pytest.fixture(scope="session")
def trace_collector() -> Iterator[TraceCollector]:
    collector = TraceCollector()
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, trace_collector: TraceCollector
) -> Iterator[Stack]:
    # pgserver's unix socket lives in the data directory: keep its path short.
    data_dir = Path(tmp_path_factory.mktemp("stack"))
    tail = LogTail()
    overrides = {
        "GATEWAY_PORT": str(free_port()),
        "BCRYPT_ROUNDS": "4",  # the cost factor is config; tests need not pay production's
        "SYNC_SCHEDULE_INTERVAL_SECONDS": "0",
        # Short leases and backoffs, so hand-overs and retries happen within a test.
        "SYNC_LEASE_SECONDS": "6",
        "SYNC_HEARTBEAT_SECONDS": "1",
        "SYNC_RETRY_BACKOFF_SECONDS": "1",
        "SYNC_CLAIM_INTERVAL_SECONDS": "0.5",
        # Every test client reaches Envoy from 127.0.0.1, one address, so the per-client limit
        # of logins and registrations would throttle the suite; test_auth_rate_limit.py runs
        # an auth with a low limit of its own.
        "LOGIN_RATE_BURST": "100000",
        # Every process, Envoy too, exports its spans to the session's collector, in batches
        # sent every 200 ms (test_tracing.py).
        "OTEL_EXPORTER_OTLP_ENDPOINT": trace_collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        running = start_stack(data_dir, overrides, log_sink=tail)
    except Exception:
        sys.stderr.write("".join(tail.lines))
        raise
    yield running
    running.stop()


@dataclass
class Answer:
    status: int
    body: Any
    headers: httpx.Headers


class Api:
    """A REST client of the gateway, as curl would be."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(
            method, path, json=body, params=params, headers=headers, content=content
        )
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        return Answer(response.status_code, parsed, response.headers)

    def register(self, **fields: str) -> dict[str, Any]:
        """A new user owning a new organization; answers the register response."""
        n = next(_unique)
        body = {
            "email": f"user{n}-{id(self)}@example.com",
            "password": "correct horse battery",
            "name": f"User {n}",
            "organization_name": f"Org {n}",
            **fields,
        }
        answer = self.call("POST", "/api/auth/register", body)
        assert answer.status == 200, answer.body
        return {**answer.body, "password": body["password"]}


@pytest.fixture(scope="session")
def api(stack: Stack) -> Api:
    return Api(stack.gateway_url)
