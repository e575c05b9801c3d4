"""The gateway degrades per route and loses no request while a service rolls over (issue 10).

Each test starts its own Envoy (and, for the rollout, two catalog replicas) beside the session
stack, on the same auth, database and DynamoDB: one backend down must not take the API down, and
a rolling restart of catalog under steady REST load must answer no 5xx, as in Kubernetes, where
the services drain (SHUTDOWN_DRAIN_SECONDS) and Envoy balances over every replica.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import httpx
import pytest

from dev.stack import PYTHON, Child, Stack, free_port, spawn_gateway
from tests.health_check import serving
from tests.integration.conftest import Api

# Longer than Envoy's health check interval (5 s): a stopping replica is seen NOT_SERVING and
# gets no new request before it stops listening.
DRAIN_SECONDS = "6"


def _wait(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (grpc.RpcError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


class Gateway:
    """An Envoy of this module's own, with its admin interface."""

    def __init__(self, stack: Stack, name: str, upstreams: dict[str, str]) -> None:
        port = free_port()
        self.stack = stack
        self.child = spawn_gateway(stack, name, port, upstreams)
        self.url = f"http://127.0.0.1:{port}"
        config = json.loads((stack.data_dir / f"{name}-envoy.json").read_text())
        admin = config["admin"]["address"]["socket_address"]["port_value"]
        self.admin_url = f"http://127.0.0.1:{admin}"
        _wait(lambda: httpx.get(f"{self.url}/readyz").status_code == 200, f"{name}'s /readyz")

    def healthy_hosts(self, cluster: str) -> set[str]:
        """host:port of the cluster's hosts Envoy's health checks find serving."""
        lines = httpx.get(f"{self.admin_url}/clusters").text.splitlines()
        prefix = f"{cluster}::"
        return {
            host
            for line in lines
            if line.startswith(prefix) and line.endswith("::health_flags::healthy")
            for host in [line.removeprefix(prefix).split("::")[0]]
        }

    def finds_healthy(self, cluster: str, host: str) -> bool:
        return host in self.healthy_hosts(cluster)

    def stop(self) -> None:
        self.child.stop()
        self.stack.children.remove(self.child)


@pytest.fixture
def own_children(stack: Stack) -> Iterator[list[Child]]:
    """Processes a test starts beside the stack; each stopped and forgotten afterwards."""
    children: list[Child] = []
    yield children
    for child in reversed(children):
        child.stop()
        if child in stack.children:
            stack.children.remove(child)


def test_a_service_down_fails_only_its_own_routes_and_the_gateway_stays_ready(
    stack: Stack, api: Api
) -> None:
    nothing_listens = f"127.0.0.1:{free_port()}"
    gateway = Gateway(
        stack,
        "gw-degraded",
        {
            "auth": stack.env["AUTH_ADDRESS"],
            "catalog": nothing_listens,
            "sync": stack.env["SYNC_ADDRESS"],
        },
    )
    try:
        client = Api(gateway.url)
        _wait(lambda: client.call("GET", "/healthz").status == 503, "/healthz to see catalog down")

        # Readiness is the gateway's own: a load balancer keeps sending it traffic.
        ready = client.call("GET", "/readyz")
        assert (ready.status, ready.body) == (200, {"status": "serving"})
        # Catalog's routes answer their own JSON 503 ...
        token = api.register()["token"]
        products = client.call("GET", "/api/products", token=token)
        assert products.status == 503
        assert products.body == {
            "code": 14,
            "message": "a service is unavailable; try again shortly",
        }
        # ... while auth's and sync's keep working through the same Envoy.
        me = client.call("GET", "/api/auth/me", token=token)
        assert me.status == 200, me.body
        assert client.call("GET", "/api/sync/logs", token=token).status == 200
        # /healthz keeps its meaning: 200 only when every service is serving.
        assert client.call("GET", "/healthz").body["code"] == 14
    finally:
        gateway.stop()


def _catalog(stack: Stack, name: str, port: int) -> Child:
    return stack.spawn(
        name,
        [PYTHON, "-m", "services.catalog.server"],
        {
            "GRPC_PORT": str(port),
            "SHUTDOWN_DRAIN_SECONDS": DRAIN_SECONDS,
            **stack.private_env["catalog"],
        },
    )


class SteadyLoad:
    """One client reading products through the gateway without a pause, until stopped."""

    def __init__(self, url: str, token: str) -> None:
        self.statuses: Counter[int] = Counter()
        self.failures: list[Any] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, token), daemon=True)

    def _run(self, url: str, token: str) -> None:
        client = Api(url)
        while not self._stopping.is_set():
            answer = client.call("GET", "/api/products", token=token, params={"page_size": 5})
            self.statuses[answer.status] += 1
            if answer.status >= 500:
                self.failures.append(answer.body)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)


def test_a_rolling_restart_of_catalog_under_load_answers_no_5xx(
    stack: Stack, api: Api, own_children: list[Child]
) -> None:
    ports = [free_port(), free_port()]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    replicas = [_catalog(stack, f"catalog-{n}", port) for n, port in enumerate(ports)]
    own_children.extend(replicas)
    for address in addresses:
        _wait(partial(serving, address), f"catalog at {address}")
    gateway = Gateway(
        stack,
        "gw-rollout",
        {
            "auth": stack.env["AUTH_ADDRESS"],
            "catalog": ",".join(addresses),
            "sync": stack.env["SYNC_ADDRESS"],
        },
    )
    own_children.append(gateway.child)
    _wait(lambda: gateway.healthy_hosts("catalog") == set(addresses), "both catalog replicas")
    token = api.register()["token"]

    with SteadyLoad(gateway.url, token) as load:
        # As a Deployment's rollout does: one replica at a time, the next once the new one is
        # ready (here: Envoy's health checks find it serving).
        for index, replica in enumerate(replicas):
            fresh = stack.restart(replica)
            own_children[own_children.index(replica)] = fresh
            _wait(
                partial(gateway.finds_healthy, "catalog", addresses[index]),
                f"the restarted catalog-{index}",
            )

    assert [child.restarts for child in own_children[:2]] == [1, 1]
    assert load.failures == [], load.statuses
    assert set(load.statuses) == {200}, load.statuses
