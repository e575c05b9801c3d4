"""What the bench puts beside or in front of the stack's servers to compare like with like.

- dynalite: a second DynamoDB server whose Query reads only the asked partition (moto's scans
  the whole table, so read figures on moto measure moto), installed with npm into `.bench/`.
- `CallRecorder`: the DynamoDB calls an in-process client makes, to replay exactly the same
  requests raw.
- `RecordingProxy`: an HTTP proxy between the catalog process and DynamoDB keeping the write
  requests, to count the write units a real sync costs from what was sent.
- (`StatementLog`, the PostgreSQL proxy noting every statement, is in tests/pg_statements.py.)
What DynamoDB bills for the recorded requests is `services.catalog.capacity.write_units`, the
arithmetic the catalog's own metrics use.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore import xform_name
from botocore.model import OperationModel
from mypy_boto3_dynamodb import DynamoDBClient

from dev.stack import REPO, Stack, free_port
from services.catalog.capacity import WRITE_OPERATIONS, Call
from services.catalog.dynamo import MAX_BATCH_WRITE_ITEMS
from services.catalog.tables import TABLE_DEFINITION
from tests.bench.figures import progress

BENCH_DIR = REPO / ".bench"
# The version the catalog tests run against (tests/catalog/conftest.py).
DYNALITE_VERSION = "4.0.0"
NPM_INSTALL_SECONDS = 300


def bench_dir() -> Path:
    """`.bench/`: results, the profile and node_modules (git ignores it)."""
    BENCH_DIR.mkdir(exist_ok=True)
    return BENCH_DIR


def dynalite_script() -> Path | None:
    """dynalite's cli.js, installed into .bench/ the first time; None without Node and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    script = bench_dir() / "node_modules" / "dynalite" / "cli.js"
    if not script.exists():
        progress(f"installing dynalite {DYNALITE_VERSION} with npm into .bench/")
        installed = subprocess.run(
            [
                *(npm, "install", "--prefix", str(BENCH_DIR)),
                *("--no-audit", "--no-fund", "--loglevel=error", f"dynalite@{DYNALITE_VERSION}"),
            ],
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_SECONDS,
            check=False,
        )
        if installed.returncode != 0 or not script.exists():
            progress(f"npm could not install dynalite: {installed.stderr.strip()[-400:]}")
            return None
    return script


def start_dynalite(stack: Stack) -> str | None:
    """dynalite on a free port as one of the stack's children; its endpoint, or None."""
    script, node = dynalite_script(), shutil.which("node")
    if script is None or node is None:
        return None
    port = free_port()
    stack.spawn(
        "dynalite",
        [
            # Its in-memory store holds every product the syncs write (a few hundred MB).
            *(node, "--max-old-space-size=8192", str(script)),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"),
        ],
    )
    wait_for_port(port, "dynalite")
    return f"http://127.0.0.1:{port}"


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on 127.0.0.1:{port}")


# ---- DynamoDB requests ----------------------------------------------------------------------


class CallRecorder:
    """The calls a boto3 DynamoDB client makes inside the `with`, parameters as given. They are
    kept by reference, not copied: the recording must not slow the calls it records."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self.calls: list[Call] = []

    def __enter__(self) -> CallRecorder:
        self._client.meta.events.register("provide-client-params.dynamodb", self._note)
        return self

    def __exit__(self, *_: object) -> None:
        self._client.meta.events.unregister("provide-client-params.dynamodb", self._note)

    def _note(self, params: dict[str, Any], model: OperationModel, **_: object) -> None:
        self.calls.append((model.name, params))

    def writes(self) -> list[Call]:
        return [call for call in self.calls if call[0] in WRITE_OPERATIONS]


def replay(client: DynamoDBClient, calls: Sequence[Call]) -> None:
    for operation, params in calls:
        getattr(client, xform_name(operation))(**params)


def items_put(calls: Sequence[Call]) -> list[dict[str, Any]]:
    """Every item the calls put, in order, however they put it (PutItem, BatchWriteItem,
    TransactWriteItems)."""
    items: list[dict[str, Any]] = []
    for operation, params in calls:
        if operation == "PutItem":
            items.append(params["Item"])
        elif operation == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                items.extend(r["PutRequest"]["Item"] for r in requests if "PutRequest" in r)
        elif operation == "TransactWriteItems":
            items.extend(e["Put"]["Item"] for e in params["TransactItems"] if "Put" in e)
    return items


def batch_writes(items: Sequence[Mapping[str, Any]], table: str) -> list[Call]:
    """BatchWriteItem calls putting these items into `table`, 25 a call, no key twice in one
    call (DynamoDB refuses that): the least a server can be asked to store them with."""
    key_names = [key["AttributeName"] for key in TABLE_DEFINITION["KeySchema"]]
    calls: list[Call] = []
    chunk: list[dict[str, Any]] = []
    keys: set[str] = set()
    for item in items:
        key = json.dumps([item.get(name) for name in key_names], sort_keys=True)
        if len(chunk) == MAX_BATCH_WRITE_ITEMS or key in keys:
            calls.append(("BatchWriteItem", {"RequestItems": {table: chunk}}))
            chunk, keys = [], set()
        chunk.append({"PutRequest": {"Item": item}})
        keys.add(key)
    if chunk:
        calls.append(("BatchWriteItem", {"RequestItems": {table: chunk}}))
    return calls


def items_written(calls: Sequence[Call]) -> int:
    """Items put or deleted by write calls."""
    count = 0
    for operation, params in calls:
        if operation == "BatchWriteItem":
            count += sum(len(requests) for requests in params["RequestItems"].values())
        elif operation == "TransactWriteItems":
            count += len(params["TransactItems"])
        elif operation in WRITE_OPERATIONS:
            count += 1
    return count


class RecordingProxy:
    """An HTTP proxy to a DynamoDB server that keeps the write requests passing through while
    `recording` is set. Other processes' writes are counted from what they really sent."""

    def __init__(self, upstream: str) -> None:
        self.recording = threading.Event()
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        target = urlsplit(upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                if operation in WRITE_OPERATIONS and proxy.recording.is_set():
                    with proxy._lock:
                        proxy.calls.append((operation, json.loads(body)))
                connection = getattr(local, "connection", None)
                if connection is None:
                    connection = local.connection = http.client.HTTPConnection(host, port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                connection.request("POST", self.path, body, headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass  # a line per request would drown the bench's own output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- PostgreSQL statements ------------------------------------------------------------------
