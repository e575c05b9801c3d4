"""What one client can do to everyone else through the gateway, and header sizes (issue 12).

- A unary gRPC call whose request ends without its message (headers with END_STREAM, or a
  truncated frame) is answered INVALID_ARGUMENT at once, directly and through Envoy; grpc.aio
  used to leave it open, and 1,100 of them made Envoy answer 503 to every user.
- While one client holds 2,000 unfinished streams and 300 connections trickling their headers,
  another client is served normally; the slow connections get a 408 and are cut off.
- Headers up to Envoy's limit (12 KiB) are served, never refused by gRPC's metadata limit (a
  random 429 listing the header names); past it Envoy answers 431, JSON naming no header.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import hpack
import pytest
from hyperframe.frame import HeadersFrame

from dev.stack import Stack
from gateway.envoy_config import (
    MAX_CONCURRENT_STREAMS,
    MAX_REQUEST_HEADERS_KB,
    REQUEST_HEADERS_TIMEOUT_SECONDS,
)
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.interceptors import NO_MESSAGE
from tests.integration.conftest import Api
from tests.integration.raw_http2 import RawHttp2, grpc_frame

pytestmark = pytest.mark.integration

LOGIN = "/marketsync.auth.v1.AuthService/Login"
GET_ME = "/marketsync.auth.v1.AuthService/GetMe"
LIST_PRODUCTS = "/marketsync.catalog.v1.CatalogService/ListProducts"
START_SYNC = "/marketsync.sync.v1.SyncService/StartSync"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVICE_OF = {LOGIN: "AUTH", GET_ME: "AUTH", LIST_PRODUCTS: "CATALOG", START_SYNC: "SYNC"}

# The request bodies of a unary call that carry no message.
NO_MESSAGE_BODIES: dict[str, bytes | None] = {
    "headers only": None,
    "truncated message": grpc_frame(b"\x0a\x03abc", declared_length=100),
    "truncated prefix": b"\x00\x00\x00",
}
PROMPTLY_SECONDS = 1.0


def _address(stack: Stack, method: str, via: str) -> tuple[str, int]:
    if via == "gateway":
        return "127.0.0.1", int(stack.env["GATEWAY_PORT"])
    service = "AUTH" if method == HEALTH_CHECK else SERVICE_OF[method]
    host, _, port = stack.env[f"{service}_ADDRESS"].rpartition(":")
    return host, int(port)


CASES = [
    *((via, method) for via in ("direct", "gateway") for method in SERVICE_OF),
    # Health is served by every service, outside the access rules, and not through Envoy.
    ("direct", HEALTH_CHECK),
]


@pytest.mark.parametrize("body", sorted(NO_MESSAGE_BODIES))
@pytest.mark.parametrize(("via", "method"), CASES)
def test_a_unary_call_without_its_message_is_answered_at_once(
    stack: Stack, via: str, method: str, body: str
) -> None:
    connection = RawHttp2(*_address(stack, method, via))
    try:
        started = time.monotonic()
        stream = connection.request(method, body=NO_MESSAGE_BODIES[body])
        end = connection.wait_for_end(stream, timeout=PROMPTLY_SECONDS)
        took = time.monotonic() - started
    finally:
        connection.close()
    assert end is not None, f"no answer within {PROMPTLY_SECONDS} s: the call is left open"
    assert not end.reset, end
    assert end.grpc_status == str(grpc.StatusCode.INVALID_ARGUMENT.value[0]), end.headers
    assert end.headers.get("grpc-message") == NO_MESSAGE, end.headers
    assert took < PROMPTLY_SECONDS


# --- one client against everyone -----------------------------------------------------------

ATTACK_STREAMS = 2000
SLOW_CONNECTIONS = 300
# A victim's login, `me` and products together must be answered within this during the attack.
VICTIM_SECONDS = 5.0
# Stream shapes the attacker cycles through: five of eight (1,250) reach auth, more than Envoy's
# default circuit breaker (1,024) lets one cluster have in flight if none is ever answered.
UNFINISHED_BODY = grpc_frame(b"\x0a\x03abc", declared_length=9)
ATTACK_SHAPES: list[dict[str, Any]] = [
    {"path": LOGIN},
    {"path": GET_ME},
    {"path": LOGIN, "body": NO_MESSAGE_BODIES["truncated message"]},
    {"path": LOGIN, "body": NO_MESSAGE_BODIES["truncated prefix"]},
    {"path": GET_ME, "body": NO_MESSAGE_BODIES["truncated message"]},
    {"path": LIST_PRODUCTS},
    # Requests whose body never ends: Envoy holds them until the request timeout.
    {"path": LOGIN, "body": UNFINISHED_BODY, "end_stream": False},
    {
        "path": "/api/auth/login",
        "body": b'{"email": "a',
        "end_stream": False,
        "content_type": "application/json",
        "extra": [("content-length", "100")],
    },
]
# HTTP/1.1 requests cut off in the request line or the headers (slowloris).
SLOW_REQUESTS = [
    b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: app",
    b"GET /api/products HTTP/1.1\r\nHost: x\r\n",
    b"GET /api/auth/me HT",
]


@dataclass
class Attack:
    connections: list[RawHttp2] = field(default_factory=list)
    slow: list[socket.socket] = field(default_factory=list)
    streams: int = 0
    slow_since: float = 0.0

    def pump(self) -> None:
        for connection in self.connections:
            connection.pump()


@contextmanager
def _attack(stack: Stack) -> Iterator[Attack]:
    """One client: ATTACK_STREAMS streams that never end as a request should, on as few
    connections as Envoy allows (all the streams it allows on each), and SLOW_CONNECTIONS
    connections trickling a request. Everything is closed on the way out."""
    port = int(stack.env["GATEWAY_PORT"])
    attack = Attack()
    try:
        connection: RawHttp2 | None = None
        on_connection = 0
        while attack.streams < ATTACK_STREAMS:
            if connection is None or on_connection >= connection.max_concurrent_streams:
                connection = RawHttp2("127.0.0.1", port)
                attack.connections.append(connection)
                connection.wait_for_settings()
                on_connection = 0
            connection.request(**ATTACK_SHAPES[attack.streams % len(ATTACK_SHAPES)])
            attack.streams += 1
            on_connection += 1
            if on_connection % 50 == 0:
                connection.pump()
        attack.slow_since = time.monotonic()
        for n in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            attack.slow.append(sock)
            sock.sendall(SLOW_REQUESTS[n % len(SLOW_REQUESTS)])
        yield attack
    finally:
        for connection in attack.connections:
            connection.close()
        for sock in attack.slow:
            sock.close()


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    received = b""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        except OSError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"a slow connection is still open; it received {received!r}")


def test_one_client_holding_thousands_of_streams_and_slow_connections_denies_no_one(
    api: Api, stack: Stack
) -> None:
    registered = api.register()
    credentials = {"email": registered["user"]["email"], "password": registered["password"]}
    with _attack(stack) as attack:
        assert attack.streams == ATTACK_STREAMS
        # Let what the attack sent reach Envoy and the services before the victim comes.
        time.sleep(0.5)
        attack.pump()

        for _ in range(3):
            began = time.monotonic()
            login = api.call("POST", "/api/auth/login", credentials)
            assert login.status == 200, login.body
            token = login.body["token"]
            me = api.call("GET", "/api/auth/me", token=token)
            assert me.status == 200, me.body
            products = api.call("GET", "/api/products", token=token, params={"page_size": 5})
            assert products.status == 200, products.body
            assert time.monotonic() - began < VICTIM_SECONDS
            attack.pump()
            time.sleep(0.5)

        # The victim was not served because the attacker had given up.
        assert not any(c.closed for c in attack.connections)
        # Nor could the attacker have put them all on one connection.
        assert all(c.max_concurrent_streams <= MAX_CONCURRENT_STREAMS for c in attack.connections)

        # The slow connections are answered 408, JSON, and closed once their headers are late.
        deadline = attack.slow_since + REQUEST_HEADERS_TIMEOUT_SECONDS + 10
        for sock in attack.slow:
            answer = _read_until_closed(sock, deadline)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer
            assert json.loads(body) == {
                "code": grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
                "message": "the request took too long to arrive",
            }


def test_a_client_opening_more_streams_than_envoy_allows_loses_its_connection(
    stack: Stack,
) -> None:
    connection = RawHttp2("127.0.0.1", int(stack.env["GATEWAY_PORT"]))
    try:
        connection.wait_for_settings()
        assert connection.max_concurrent_streams == MAX_CONCURRENT_STREAMS
        # h2 keeps to the limit, so the extra streams' HEADERS frames are written by hand.
        encoder = hpack.Encoder()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", LOGIN),
            (":authority", connection.authority),
            ("content-type", "application/grpc"),
        ]
        frames = b""
        for n in range(MAX_CONCURRENT_STREAMS + 50):
            frame = HeadersFrame(2 * n + 1, encoder.encode(headers))
            frame.flags.add("END_HEADERS")
            frames += frame.serialize()
        connection.sock.sendall(frames)
        # Envoy closes a connection it gives up on after its delayed-close timeout (1 s).
        deadline = time.monotonic() + 5
        while not connection.closed and time.monotonic() < deadline:
            connection.pump(wait=deadline - time.monotonic())
        assert connection.closed
    finally:
        connection.close()


# --- header sizes ----------------------------------------------------------------------------


def _padding(kib: int, fields: int) -> dict[str, str]:
    """`fields` headers whose names and values add up to `kib` KiB."""
    size = kib * 1024 // fields
    names = [f"x-pad-{n:03d}" for n in range(fields)]
    return {name: "p" * (size - len(name)) for name in names}


@pytest.mark.parametrize("fields", [4, 80])
@pytest.mark.parametrize("kib", [9, 11])
def test_headers_within_envoys_limit_are_served(api: Api, kib: int, fields: int) -> None:
    token = api.register()["token"]
    # gRPC's soft limit refused a random share: one success proves nothing, twenty do.
    for _ in range(20):
        me = api.client.get(
            "/api/auth/me", headers={**_padding(kib, fields), "authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200, me.text
        anonymous = api.client.get("/api/auth/me", headers=_padding(kib, fields))
        assert anonymous.status_code == 401, anonymous.text


def test_grpc_metadata_within_envoys_limit_is_served_through_envoy(stack: Stack) -> None:
    padding = tuple(_padding(11, 10).items())
    with grpc.insecure_channel(f"127.0.0.1:{stack.env['GATEWAY_PORT']}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for _ in range(20):
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetMe(auth_pb2.GetMeRequest(), metadata=padding, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value


@pytest.mark.parametrize(("kib", "fields"), [(13, 4), (16, 10), (64, 16), (2, 120)])
def test_headers_past_envoys_limit_get_431_json_naming_no_header(
    api: Api, kib: int, fields: int
) -> None:
    padding = _padding(kib, fields)
    answer = api.client.get("/api/auth/me", headers=padding)
    assert answer.status_code == 431, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert str(MAX_REQUEST_HEADERS_KB) in body["message"]
    assert "x-pad" not in answer.text
    for name in ("authorization", "content-type", "user-agent", ":path"):
        assert name not in body["message"]
