"""DynamoDB backends for catalog tests: a moto server, and dynalite where Node is installed.

Both run once per session on free ports bound to 127.0.0.1; each test gets its own table.
dynalite is installed with npm into a cache outside the repository (DYNALITE_DIR, by default
/tmp/dynalite-cache) the first time it is needed.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.server import ThreadedMotoServer

from services.catalog.dynamo import Backoff, make_dynamodb_client
from services.catalog.store import ProductStore
from services.catalog.tables import ensure_table

REGION = "us-east-1"
PAGE_TOKEN_KEY = b"catalog-test-page-token-key-0123456789"
DYNALITE_VERSION = "4.0.0"
FAST_BACKOFF = Backoff(base_seconds=0.001, cap_seconds=0.01, deadline_seconds=5.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="session", autouse=True)
def aws_test_credentials() -> Iterator[None]:
    """Local servers accept any credentials; botocore just needs some to sign with."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _dynalite_script() -> Path | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    cache = Path(os.environ.get("DYNALITE_DIR", "/tmp/dynalite-cache"))
    script = cache / "node_modules" / "dynalite" / "cli.js"
    if not script.exists():
        cache.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", f"dynalite@{DYNALITE_VERSION}"],
            cwd=cache,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            return None
    return script


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    script = _dynalite_script()
    node = shutil.which("node")
    if script is None or node is None:
        pytest.skip("dynalite needs Node and npm")
    port = free_port()
    process = subprocess.Popen(
        [
            *(node, str(script), "--host", "127.0.0.1", "--port", str(port)),
            *("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["moto", "dynalite"])
def endpoint(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_endpoint")


@pytest.fixture
def client(endpoint: str) -> Any:
    return make_dynamodb_client(REGION, endpoint)


@pytest.fixture
def table(client: Any) -> str:
    name = f"products-{uuid.uuid4().hex[:12]}"
    ensure_table(client, name)
    return name


class TickingClock:
    """A clock that moves one millisecond per reading, so created_at values differ."""

    def __init__(self) -> None:
        self._ticks = itertools.count()
        self._start = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self._start + timedelta(milliseconds=next(self._ticks))


@pytest.fixture
def make_store(client: Any, table: str) -> Callable[..., ProductStore]:
    def make(**options: Any) -> ProductStore:
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("clock", TickingClock())
        return ProductStore(client, table, PAGE_TOKEN_KEY, **options)

    return make


@pytest.fixture
def store(make_store: Callable[..., ProductStore]) -> ProductStore:
    return make_store()


class CallCounter:
    """Counts DynamoDB operations a client sends, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.counts: dict[str, int] = {}
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] = self.counts.get(model.name, 0) + 1

    def writes(self) -> int:
        return sum(
            self.counts.get(name, 0)
            for name in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
        )


@pytest.fixture
def calls(client: Any) -> Iterator[CallCounter]:
    counter = CallCounter(client)
    yield counter
    client.meta.events.unregister("before-call.dynamodb", counter._count)


def canned_answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    """What a before-call hook returns to answer a call without sending it."""
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "HTTPHeaders": {}})
    return AWSResponse("http://canned", status, {}, None), parsed


def request_body(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(params["body"])
