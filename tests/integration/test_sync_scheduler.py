"""Scheduled syncs with two sync replicas: each due organization and marketplace starts once.

The stack's own sync replica runs no scheduler (SYNC_SCHEDULE_INTERVAL_SECONDS=0); a second
replica joins for this module. Other tests of the session have organizations with credentials
too, which become due as well: assertions look at this module's organizations only.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from marketsync.devstack import REPO, Stack, free_port
from marketsync.service_auth import ServiceCredential, internal_channel
from marketsync.sync.v1 import sync_pb2, sync_pb2_grpc
from tests.integration.conftest import Api
from tests.integration.sync_support import (
    FINAL_STATUSES,
    SYNC_DEADLINE_SECONDS,
    Seller,
    account,
    amazon_credentials,
    new_seller,
    save_credentials,
    walmart_credentials,
)

INTERVAL_SECONDS = 3600
SIZE = 20


@pytest.fixture(scope="module")
def second_replica(stack: Stack) -> Iterator[str]:
    """The address of a second sync server process, stopped when the module is done."""
    port = free_port()
    child = stack.spawn(
        "sync-2",
        [sys.executable, "-m", "services.sync.server"],
        {"GRPC_PORT": str(port), "SYNC_SCHEDULE_INTERVAL_SECONDS": "0"},
    )
    give_up = time.monotonic() + 60
    while not _accepts_connections(port):
        assert child.process.poll() is None, "the second sync replica exited"
        assert time.monotonic() < give_up, "the second sync replica did not start"
        time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    child.stop()
    stack.children.remove(child)


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _start_due_syncs(stack: Stack, addresses: list[str]) -> list[set[tuple[str, str]]]:
    """Asks every replica at once to start the due syncs; answers what each scheduled."""
    credential = ServiceCredential(stack.env["INTERNAL_SERVICE_KEY"], "scheduler")
    channels = [internal_channel(address, credential) for address in addresses]
    try:
        answers = await asyncio.gather(
            *(
                sync_pb2_grpc.SyncInternalServiceStub(channel).StartDueSyncs(
                    sync_pb2.StartDueSyncsRequest(
                        interval_seconds=INTERVAL_SECONDS, jitter_seconds=0
                    ),
                    timeout=60,
                )
                for channel in channels
            )
        )
    finally:
        for channel in channels:
            await channel.close()
    return [{(str(d.organization_id), d.marketplace) for d in a.scheduled} for a in answers]


def _finished_logs(api: Api, seller: Seller, expected: int) -> list[dict[str, Any]]:
    """The organization's sync logs once `expected` of them have ended."""
    give_up = time.monotonic() + SYNC_DEADLINE_SECONDS
    while True:
        logs = api.call("GET", "/api/sync/logs", token=seller.token).body["logs"]
        if len([log for log in logs if log["status"] in FINAL_STATUSES]) >= expected:
            return list(logs)
        assert time.monotonic() < give_up, logs
        time.sleep(0.25)


def _seller_with(api: Api, *marketplaces: str) -> Seller:
    seller = new_seller(api)
    for marketplace in marketplaces:
        if marketplace == "amazon":
            fields = amazon_credentials(account("Atzr|scheduled", SIZE))
        else:
            fields = walmart_credentials(account("scheduled-client", SIZE))
        save_credentials(api, seller, marketplace, fields)
    return seller


def test_two_replicas_asked_at_once_start_each_due_sync_once(
    api: Api, stack: Stack, second_replica: str
) -> None:
    both = _seller_with(api, "amazon", "walmart")
    walmart_only = _seller_with(api, "walmart")
    never_due = new_seller(api)

    scheduled = asyncio.run(_start_due_syncs(stack, [stack.env["SYNC_ADDRESS"], second_replica]))
    mine = {
        (both.organization_id, "amazon"),
        (both.organization_id, "walmart"),
        (walmart_only.organization_id, "walmart"),
    }
    assert mine <= scheduled[0] | scheduled[1], scheduled
    assert not any(org == never_due.organization_id for org, _ in scheduled[0] | scheduled[1])

    for seller, marketplaces in ((both, ["amazon", "walmart"]), (walmart_only, ["walmart"])):
        logs = _finished_logs(api, seller, len(marketplaces))
        assert sorted(log["marketplace"] for log in logs) == marketplaces, logs
        for log in logs:
            assert log["status"] == "succeeded", log
            assert log["items_written"] == SIZE, log
    assert api.call("GET", "/api/sync/logs", token=never_due.token).body["logs"] == []

    # Asked again within the interval, neither replica finds them due.
    again = asyncio.run(_start_due_syncs(stack, [stack.env["SYNC_ADDRESS"], second_replica]))
    assert not mine & (again[0] | again[1]), again


def test_the_scheduler_command_starts_due_syncs_through_a_replica(
    api: Api, stack: Stack, second_replica: str
) -> None:
    seller = _seller_with(api, "walmart")
    finished = subprocess.run(
        [sys.executable, "-m", "services.sync.scheduler"],
        env={
            **stack.env,
            "SYNC_ADDRESS": second_replica,
            "SYNC_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
            "SYNC_JITTER_SECONDS": "0",
        },
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr.decode() + finished.stdout.decode()
    logs = _finished_logs(api, seller, 1)
    assert [(log["marketplace"], log["status"]) for log in logs] == [("walmart", "succeeded")]
    assert logs[0]["items_written"] == SIZE
