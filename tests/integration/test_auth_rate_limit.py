"""The per-client limit of logins and registrations, through Envoy and directly.

The shared stack's limit is raised out of the way (every test client is 127.0.0.1), so this
module starts a second auth with a low limit (4 at once, then one every 15 s) on the same
database, and a second Envoy in front of it. Clients vary their source address by binding to
other loopback addresses (127.0.0.2, 127.0.0.3 ...), which Linux routes like 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import grpc
import httpx
import pytest

from dev.stack import PYTHON, Child, Stack, free_port, spawn_gateway
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.health_check import serving
from tests.integration.conftest import Api

BURST = 4
PER_MINUTE = 4
RETRY = re.compile(r"from your address; try again in (\d+) seconds?$")
_addresses = (f"127.0.0.{n}" for n in itertools.count(2))
_unique = itertools.count(1)


@dataclass(frozen=True)
class Limited:
    gateway_url: str
    auth_address: str


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (grpc.RpcError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[Limited]:
    auth_port, gateway_port = free_port(), free_port()
    children: list[Child] = []
    try:
        children.append(
            stack.spawn(
                "auth-rl",
                [PYTHON, "-m", "services.auth.server"],
                {
                    "GRPC_PORT": str(auth_port),
                    "LOGIN_RATE_BURST": str(BURST),
                    "LOGIN_RATE_PER_MINUTE": str(PER_MINUTE),
                },
            )
        )
        auth_address = f"127.0.0.1:{auth_port}"
        _wait(partial(serving, auth_address), "the rate-limited auth")
        upstreams = {
            "auth": auth_address,
            "catalog": stack.env["CATALOG_ADDRESS"],
            "sync": stack.env["SYNC_ADDRESS"],
        }
        children.append(spawn_gateway(stack, "gw-rl", gateway_port, upstreams))
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        _wait(lambda: httpx.get(f"{gateway_url}/healthz").status_code == 200, "its Envoy")
        yield Limited(gateway_url, auth_address)
    finally:
        for child in reversed(children):
            child.stop()
            stack.children.remove(child)


def _client(limited: Limited, source: str) -> httpx.Client:
    """A REST client whose connections come from `source`, a loopback address."""
    return httpx.Client(
        base_url=limited.gateway_url,
        transport=httpx.HTTPTransport(local_address=source),
        timeout=30,
    )


def _register(client: httpx.Client, email: str) -> httpx.Response:
    return client.post(
        "/api/auth/register",
        json={"email": email, "password": "long enough", "name": "R", "organization_name": "R"},
    )


def _login(client: httpx.Client, email: str, password: str, **headers: str) -> httpx.Response:
    return client.post(
        "/api/auth/login", json={"email": email, "password": password}, headers=headers
    )


def _email() -> str:
    return f"limited-{next(_unique)}-{time.time_ns()}@example.com"


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == 8, body
    seconds = RETRY.search(body["message"])
    assert seconds is not None, body
    assert 1 <= int(seconds.group(1)) <= 60 / PER_MINUTE, body


def test_a_client_over_the_limit_gets_429_while_another_address_is_unaffected(
    limited: Limited, api: Api
) -> None:
    email = _email()
    with _client(limited, next(_addresses)) as greedy, _client(limited, next(_addresses)) as other:
        # Registrations and logins, right or wrong, share one bucket.
        assert _register(greedy, email).status_code == 200
        assert _login(greedy, email, "long enough").status_code == 200
        assert _login(greedy, email, "wrong password").status_code == 401
        assert _login(greedy, _email(), "wrong password").status_code == 401
        _assert_limited(_login(greedy, email, "long enough"))
        _assert_limited(_register(greedy, _email()))
        # The address is Envoy's view of the connection: headers a client sends change nothing.
        for header in ("x-forwarded-for", "x-envoy-external-address", "x-real-ip", "forwarded"):
            _assert_limited(_login(greedy, email, "long enough", **{header: "198.51.100.23"}))
        # Another address logs in, into the same account too: the email is not locked.
        assert _login(other, email, "long enough").status_code == 200
        assert _register(other, _email()).status_code == 200
    # Nor is the shared stack's gateway, on another auth replica, affected.
    assert (
        api.call("POST", "/api/auth/login", {"email": email, "password": "long enough"}).status
        == 200
    )


def test_grpc_clients_through_envoy_cannot_claim_another_address(limited: Limited) -> None:
    gateway = limited.gateway_url.removeprefix("http://")
    source = next(_addresses)
    # gRPC binds a client's source address only through a custom socket; a REST client on the
    # same address spends the bucket first instead.
    with _client(limited, source) as rest:
        for _ in range(BURST):
            assert _login(rest, _email(), "wrong password").status_code == 401
        _assert_limited(_login(rest, _email(), "wrong password"))
    with grpc.insecure_channel(gateway) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Login(
                auth_pb2.LoginRequest(email=_email(), password="wrong password"),
                metadata=(("x-envoy-external-address", source), ("x-forwarded-for", source)),
                timeout=10,
            )
    # Spoofing the exhausted address from 127.0.0.1 does not borrow its bucket either.
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()


def test_direct_calls_are_limited_by_the_address_envoy_sets(limited: Limited) -> None:
    """Inside the cluster auth trusts x-envoy-external-address, which only Envoy (and the
    internal services, which never log anyone in) can reach auth with."""

    def login_from(stub: auth_pb2_grpc.AuthServiceStub, address: str) -> grpc.StatusCode:
        try:
            stub.Login(
                auth_pb2.LoginRequest(email=_email(), password="wrong password"),
                metadata=(("x-envoy-external-address", address),),
                timeout=10,
            )
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    with grpc.insecure_channel(limited.auth_address) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        first = [login_from(stub, "203.0.113.10") for _ in range(BURST + 1)]
        assert first == [grpc.StatusCode.UNAUTHENTICATED] * BURST + [
            grpc.StatusCode.RESOURCE_EXHAUSTED
        ]
        assert login_from(stub, "203.0.113.11") == grpc.StatusCode.UNAUTHENTICATED
        # An IPv6 client is one client across its /64.
        ipv6 = [login_from(stub, f"2001:db8:0:1::{n:x}") for n in range(1, BURST + 2)]
        assert ipv6[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert login_from(stub, "2001:db8:0:2::1") == grpc.StatusCode.UNAUTHENTICATED


def test_the_429_body_is_json_like_every_error(limited: Limited) -> None:
    with _client(limited, next(_addresses)) as client:
        answers = [_login(client, _email(), "wrong password") for _ in range(BURST + 1)]
    refused = answers[-1]
    _assert_limited(refused)
    assert refused.headers["content-type"].startswith("application/json")
    assert set(json.loads(refused.text)) >= {"code", "message"}
