"""The stack starts its children from processes busy with gRPC calls (the tests, the bench):
forking there must never take a child down before it runs."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from dev.stack import new_stack
from tests.health_check import serving

SPAWNS = 200
# They take about 2 s; a hung fork is the only way to need more.
SPAWNS_SECONDS = 60


@pytest.fixture
def grpc_calls_under_way() -> Iterator[None]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()

    def call_again_and_again() -> None:
        while not stop.is_set():
            serving(f"127.0.0.1:{port}")

    callers = [threading.Thread(target=call_again_and_again) for _ in range(4)]
    for caller in callers:
        caller.start()
    yield
    stop.set()
    for caller in callers:
        caller.join()
    server.stop(None)


@pytest.mark.usefixtures("grpc_calls_under_way")
def test_children_spawned_during_grpc_calls_all_run(tmp_path: Path) -> None:
    output = io.StringIO()
    stack = new_stack(tmp_path, log_sink=output)
    exits: list[int] = []

    def spawn_them_all() -> None:
        for _ in range(SPAWNS):
            child = stack.spawn("true", ["true"])
            exits.append(child.process.wait(timeout=10))
            child.relay.join(timeout=10)

    # A child stuck between fork and exec leaves Popen waiting for ever: fail, not hang.
    spawning = threading.Thread(target=spawn_them_all, daemon=True)
    spawning.start()
    spawning.join(timeout=SPAWNS_SECONDS)
    assert not spawning.is_alive(), f"a spawn hung after {len(exits)} children ran"
    assert exits == [0] * SPAWNS, output.getvalue()[-2000:]
