"""Syncs as durable work claimed by replicas: capacity, exactly-once runs, a replica killed or
stopped mid-sync.

The module replaces the stack's sync replica with two of its own, `a` on the stack's sync port
(so REST reaches it through Envoy) and `b`, each running at most CAPACITY syncs; the stack's
replica comes back when the module ends. Which replica runs a sync is read from the sync log
(`replica` names its host and process id).
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest

from dev.stack import Child, Stack
from tests.integration.conftest import Api
from tests.integration.sync_support import (
    SYNC_DEADLINE_SECONDS,
    Sandbox,
    Seller,
    account,
    all_products,
    new_seller,
    save_credentials,
    start_sync,
    walmart_credentials,
)

CAPACITY = 3
SLOW_SIZE = 400  # 8 item pages: with a slow sandbox, a sync runs for several seconds


@dataclass
class Replicas:
    stack: Stack
    children: dict[str, Child]

    def spawn(self, name: str) -> Child:
        port = self.stack.env["SYNC_ADDRESS"].rsplit(":", 1)[1] if name == "a" else "0"
        child = self.stack.spawn(
            f"sync-{name}",
            [sys.executable, "-m", "services.sync.server"],
            {
                "GRPC_PORT": port,
                "SYNC_MAX_CONCURRENT": str(CAPACITY),
                **self.stack.private_env["sync"],
            },
        )
        self.children[name] = child
        return child

    def name_of(self, name: str) -> str:
        return f"{socket.gethostname()}:{self.children[name].process.pid}"

    def stop(self, name: str, *, kill: bool = False) -> None:
        child = self.children.pop(name)
        if kill:
            child.process.kill()
            child.process.wait()
        child.stop()
        self.stack.children.remove(child)


def _stop_child(stack: Stack, name: str) -> None:
    [child] = [c for c in stack.children if c.name == name]
    child.stop()
    stack.children.remove(child)


@pytest.fixture(scope="module")
def replicas(stack: Stack) -> Iterator[Replicas]:
    _stop_child(stack, "sync")
    pair = Replicas(stack, {})
    try:
        pair.spawn("a")
        pair.spawn("b")
        _wait_until_serving(stack)
        yield pair
    finally:
        for name in list(pair.children):
            pair.stop(name)
        stack.spawn(
            "sync",
            [sys.executable, "-m", "services.sync.server"],
            {"GRPC_PORT": stack.env["SYNC_ADDRESS"].rsplit(":", 1)[1], **stack.private_env["sync"]},
        )
        _wait_until_serving(stack)


def _wait_until_serving(stack: Stack) -> None:
    port = int(stack.env["SYNC_ADDRESS"].rsplit(":", 1)[1])
    give_up = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < give_up, "the sync replica did not start"
            time.sleep(0.1)


@dataclass(frozen=True)
class Row:
    status: str
    attempt: int
    replica: str | None
    items_written: int
    items_unchanged: int


class Logs:
    """The sync logs as the database holds them, by id."""

    def __init__(self, stack: Stack) -> None:
        self._url = stack.env["CRED_DATABASE_URL"]

    def rows(self, sync_ids: list[str]) -> dict[str, Row]:
        with psycopg.connect(self._url) as conn:
            found = conn.execute(
                "SELECT id::text, status, attempt, replica, items_written, items_unchanged"
                " FROM sync_logs"
                " WHERE id = ANY(%s::bigint[])",
                (sync_ids,),
            ).fetchall()
        return {row[0]: Row(*row[1:]) for row in found}

    def running_per_replica(self) -> dict[str, int]:
        with psycopg.connect(self._url) as conn:
            found = conn.execute(
                "SELECT replica, count(*) FROM sync_logs WHERE status = 'running' GROUP BY replica"
            ).fetchall()
        return {str(replica): int(count) for replica, count in found}

    def wait(self, sync_ids: list[str], done: Callable[[Row], bool], what: str) -> dict[str, Row]:
        give_up = time.monotonic() + SYNC_DEADLINE_SECONDS
        while True:
            rows = self.rows(sync_ids)
            if len(rows) == len(sync_ids) and all(done(row) for row in rows.values()):
                return rows
            assert time.monotonic() < give_up, f"not {what}: {rows}"
            time.sleep(0.1)


def _sellers(
    api: Api, sandbox: Sandbox, count: int, size: int, delay: float
) -> list[tuple[Seller, str]]:
    """Sellers with Walmart credentials of their own sandbox account; `delay` slows each page."""
    sellers = []
    for _ in range(count):
        seller = new_seller(api)
        client_id = account("queue-client", size)
        save_credentials(api, seller, "walmart", walmart_credentials(client_id))
        if delay:
            sandbox.set_faults(client_id, delay_seconds={"getAllItems": delay})
        sellers.append((seller, client_id))
    return sellers


def test_two_replicas_run_fifty_queued_syncs_each_once_within_their_capacity(
    api: Api, stack: Stack, replicas: Replicas
) -> None:
    sandbox, logs = Sandbox(stack), Logs(stack)
    sellers = _sellers(api, sandbox, 50, 30, delay=0.3)
    with ThreadPoolExecutor(8) as pool:
        sync_ids = list(pool.map(lambda s: start_sync(api, s[0].token, "walmart"), sellers))

    busiest: dict[str, int] = {}
    give_up = time.monotonic() + SYNC_DEADLINE_SECONDS
    while True:
        for replica, count in logs.running_per_replica().items():
            busiest[replica] = max(busiest.get(replica, 0), count)
        rows = logs.rows(sync_ids)
        if all(row.status in ("succeeded", "partial", "failed") for row in rows.values()):
            break
        assert time.monotonic() < give_up, rows
        time.sleep(0.05)

    assert {row.status for row in rows.values()} == {"succeeded"}, rows
    assert {row.attempt for row in rows.values()} == {1}, rows
    assert {row.items_written for row in rows.values()} == {30}, rows
    ours = {replicas.name_of("a"), replicas.name_of("b")}
    assert set(busiest) == ours, busiest  # both took work
    assert max(busiest.values()) <= CAPACITY, busiest
    for _, client_id in sellers:
        # One run each: one token, one page of items.
        calls = sandbox.calls(client_id)
        assert (calls["walmartToken"], calls["getAllItems"]) == (1, 1), calls


def _running_on_both(
    api: Api, stack: Stack
) -> tuple[list[tuple[Seller, str]], list[str], dict[str, Row]]:
    """CAPACITY slow syncs, all running; answers sellers, sync ids and the running rows."""
    sandbox, logs = Sandbox(stack), Logs(stack)
    sellers = _sellers(api, sandbox, CAPACITY, SLOW_SIZE, delay=0.8)
    sync_ids = [start_sync(api, seller.token, "walmart") for seller, _ in sellers]
    rows = logs.wait(sync_ids, lambda row: row.status == "running", "running")
    return sellers, sync_ids, rows


def _assert_complete(api: Api, sellers: list[tuple[Seller, str]]) -> None:
    for seller, _ in sellers:
        assert len(all_products(api, seller.token, "walmart")) == SLOW_SIZE


def test_a_killed_replicas_syncs_finish_on_the_other_as_attempt_two(
    api: Api, stack: Stack, replicas: Replicas
) -> None:
    sellers, sync_ids, rows = _running_on_both(api, stack)
    # Kill whichever replica holds syncs; prefer b, whose port REST does not need.
    victim = "b" if replicas.name_of("b") in {r.replica for r in rows.values()} else "a"
    doomed = [i for i, row in rows.items() if row.replica == replicas.name_of(victim)]
    replicas.stop(victim, kill=True)
    if victim == "a":
        replicas.spawn("a")  # REST needs a replica on the stack's port; it has room

    done = Logs(stack).wait(sync_ids, lambda row: row.status == "succeeded", "succeeded")
    for sync_id, row in done.items():
        assert row.attempt == (2 if sync_id in doomed else 1), done
        # What the first attempt stored before it died is unchanged for the second.
        assert row.items_written + row.items_unchanged == SLOW_SIZE, done
    _assert_complete(api, sellers)
    if victim == "b":
        replicas.spawn("b")


def test_a_stopping_replica_hands_its_syncs_over_within_seconds(
    api: Api, stack: Stack, replicas: Replicas
) -> None:
    sellers, sync_ids, rows = _running_on_both(api, stack)
    victim = "b" if replicas.name_of("b") in {r.replica for r in rows.values()} else "a"
    survivor = "a" if victim == "b" else "b"
    handed = [i for i, row in rows.items() if row.replica == replicas.name_of(victim)]
    survivor_name = replicas.name_of(survivor)

    replicas.children[victim].process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    taken = Logs(stack).wait(
        handed, lambda row: row.status == "running" and row.replica == survivor_name, "taken over"
    )
    assert time.monotonic() - stopped_at < 5, taken
    # A hand-over is not a failed attempt.
    assert {row.attempt for row in taken.values()} == {1}, taken
    replicas.stop(victim)
    if victim == "a":
        replicas.spawn("a")

    done = Logs(stack).wait(sync_ids, lambda row: row.status == "succeeded", "succeeded")
    assert {row.attempt for row in done.values()} == {1}, done
    _assert_complete(api, sellers)
    if victim == "b":
        replicas.spawn("b")
