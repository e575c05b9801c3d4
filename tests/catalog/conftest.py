"""DynamoDB backends for catalog tests: a moto server, and dynalite where Node is installed.

Both run once per session on free ports bound to 127.0.0.1; each test gets its own table.
dynalite is installed with npm into a cache outside the repository (DYNALITE_DIR, by default
/tmp/dynalite-cache) the first time it is needed. Hooks on the client count its calls and the
write units its requests cost.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto.server import ThreadedMotoServer

from dev.stack import free_port
from marketsync.backoff import Backoff
from services.catalog.dynamo import item_size, make_dynamodb_client
from services.catalog.store import ProductStore
from services.catalog.tables import ensure_table

REGION = "us-east-1"
PAGE_TOKEN_KEY = b"catalog-test-page-token-key-0123456789"
DYNALITE_VERSION = "4.0.0"
FAST_BACKOFF = Backoff(base_seconds=0.001, cap_seconds=0.01, deadline_seconds=5.0)


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
    url: str = request.getfixturevalue(f"{request.param}_endpoint")
    return url


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
        # The store's conditional puts call from several threads at once.
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
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
    return AWSResponse("http://canned", status, HTTPHeaders(), None), parsed


def request_body(params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(params["body"])
    return body


Item = dict[str, Any]
_WRITES = ("PutItem", "DeleteItem", "BatchWriteItem")


class Units(NamedTuple):
    table: int  # products' items
    index: int  # type: ignore[assignment]  # shadows tuple.index, which no test calls
    # What the server said the table consumed: dynalite computes it from item sizes too.
    reported_table: float
    # The organization's creation lease (taken and given back): a cost per batch, not product.
    lease: int = 0


class WriteUnits:
    """DynamoDB write units of everything a client writes to a table, billed as DynamoDB bills
    them rather than as the local servers report them (moto answers fixed numbers).

    Each item written costs one unit per started KB of the larger of the item before and after
    (a delete: the item deleted); a put that fails its condition still costs the stored item's
    units. Each GSI entry the write adds, removes or changes costs one unit per started KB of the
    entry, sized by what the index projects (the table's real projection, read from the table);
    an entry whose key changes costs a delete and a put. The item before each write is read just
    before it, so the figures are exact for writes that do not race each other on one item.
    """

    def __init__(self, client: Any, endpoint: str, table: str) -> None:
        self._reader = make_dynamodb_client(REGION, endpoint)
        self._table_name = table
        description = self._reader.describe_table(TableName=table)["Table"]
        self._keys = [key["AttributeName"] for key in description["KeySchema"]]
        self._indexes = {
            index["IndexName"]: (
                [key["AttributeName"] for key in index["KeySchema"]],
                index["Projection"],
            )
            for index in description.get("GlobalSecondaryIndexes", [])
        }
        self._lock = threading.Lock()
        self._taken = Units(0, 0, 0.0)
        self._client = client
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def close(self) -> None:
        self._client.meta.events.unregister("before-parameter-build.dynamodb", self._before)
        self._client.meta.events.unregister("after-call.dynamodb", self._after)

    def take(self) -> Units:
        """The units written since the last take."""
        with self._lock:
            taken, self._taken = self._taken, Units(0, 0, 0.0)
        return taken

    def _before(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if model.name not in _WRITES:
            assert model.name not in ("UpdateItem", "TransactWriteItems", "ExecuteStatement"), (
                f"{model.name} is not metered"
            )
            return
        params["ReturnConsumedCapacity"] = "TOTAL"
        writes: list[tuple[Item, Item | None]] = []
        if model.name == "BatchWriteItem":
            for request in params["RequestItems"][self._table_name]:
                if "PutRequest" in request:
                    writes.append(self._keyed(request["PutRequest"]["Item"]))
                else:
                    writes.append((request["DeleteRequest"]["Key"], None))
        elif model.name == "PutItem":
            writes.append(self._keyed(params["Item"]))
        else:
            writes.append((params["Key"], None))
        context["write_units"] = [(key, self._stored(key), new) for key, new in writes]

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "write_units" not in context:
            return
        failed = parsed.get("Error", {}).get("Code", "")
        unprocessed = {
            self._key_tuple(
                request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
            )
            for request in parsed.get("UnprocessedItems", {}).get(self._table_name, [])
        }
        table = index = lease = 0
        for key, old, new in context["write_units"]:
            if failed == "ConditionalCheckFailedException":
                written = _units(item_size(old)) if old else 1
            elif not failed and self._key_tuple(key) not in unprocessed:
                written = _units(max(item_size(old) if old else 0, item_size(new) if new else 0))
                index += sum(self._index_units(name, old, new) for name in self._indexes)
            else:
                continue
            if key["PK"]["S"].endswith("#LEASE"):
                lease += written
            else:
                table += written
        consumed = parsed.get("ConsumedCapacity", [])
        reported = sum(
            float(entry.get("CapacityUnits", 0))
            for entry in (consumed if isinstance(consumed, list) else [consumed])
        )
        with self._lock:
            self._taken = Units(
                self._taken.table + table,
                self._taken.index + index,
                self._taken.reported_table + reported,
                self._taken.lease + lease,
            )

    def _index_units(self, name: str, old: Item | None, new: Item | None) -> int:
        before, after = self._entry(name, old), self._entry(name, new)
        if before is None or after is None:
            entry = before or after
            return _units(item_size(entry)) if entry else 0
        index_keys = self._indexes[name][0]
        if any(before[key] != after[key] for key in index_keys):
            return _units(item_size(before)) + _units(item_size(after))
        return 0 if before == after else _units(max(item_size(before), item_size(after)))

    def _entry(self, name: str, item: Item | None) -> Item | None:
        """The item as the index holds it; None when the item is not in the (sparse) index."""
        index_keys, projection = self._indexes[name]
        if item is None or any(key not in item for key in index_keys):
            return None
        if projection["ProjectionType"] == "ALL":
            return item
        kept = {*self._keys, *index_keys, *projection.get("NonKeyAttributes", [])}
        return {attribute: value for attribute, value in item.items() if attribute in kept}

    def _keyed(self, item: Item) -> tuple[Item, Item]:
        return {key: item[key] for key in self._keys}, item

    def _key_tuple(self, item: Item) -> tuple[str, ...]:
        return tuple(json.dumps(item[key], sort_keys=True) for key in self._keys)

    def _stored(self, key: Item) -> Item | None:
        answer = self._reader.get_item(TableName=self._table_name, Key=key, ConsistentRead=True)
        return answer.get("Item")


def _units(size: int) -> int:
    """Write units of an item or index entry of this many bytes: one per started KB."""
    return max(1, -(-size // 1024))


@pytest.fixture
def write_units(client: Any, endpoint: str, table: str) -> Iterator[WriteUnits]:
    meter = WriteUnits(client, endpoint, table)
    yield meter
    meter.close()
