"""Scheduled syncs: schedulers only queue due syncs (each once, however many ask at once), and
whichever sync replica has room runs them.

The stack's sync replica runs no scheduler of its own (SYNC_SCHEDULE_INTERVAL_SECONDS=0). Other
tests of the session have organizations with credentials too, which become due as well:
assertions look at this module's organizations only.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

from dev.stack import REPO, Stack
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.service_auth import ServiceCredential, internal_channel
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


async def _enqueue_due_syncs(stack: Stack, schedulers: int) -> list[set[tuple[str, str]]]:
    """Several schedulers ask auth at once to queue the due syncs; answers what each queued."""
    credential = ServiceCredential(stack.service_key("scheduler"), "scheduler")
    async with internal_channel(stack.env["AUTH_ADDRESS"], credential) as channel:
        answers = await asyncio.gather(
            *(
                auth_pb2_grpc.AuthInternalServiceStub(channel).EnqueueDueSyncs(
                    auth_pb2.EnqueueDueSyncsRequest(
                        interval_seconds=INTERVAL_SECONDS, jitter_seconds=0
                    ),
                    timeout=60,
                )
                for _ in range(schedulers)
            )
        )
    return [{(str(d.organization_id), d.marketplace) for d in a.queued} for a in answers]


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


def test_schedulers_asking_at_once_queue_each_due_sync_once(api: Api, stack: Stack) -> None:
    both = _seller_with(api, "amazon", "walmart")
    walmart_only = _seller_with(api, "walmart")
    never_due = new_seller(api)

    scheduled = asyncio.run(_enqueue_due_syncs(stack, 3))
    mine = {
        (both.organization_id, "amazon"),
        (both.organization_id, "walmart"),
        (walmart_only.organization_id, "walmart"),
    }
    everything = set.union(*scheduled)
    assert mine <= everything, scheduled
    for due in mine:
        assert sum(due in queued for queued in scheduled) == 1, scheduled
    assert not any(org == never_due.organization_id for org, _ in everything)

    for seller, marketplaces in ((both, ["amazon", "walmart"]), (walmart_only, ["walmart"])):
        logs = _finished_logs(api, seller, len(marketplaces))
        assert sorted(log["marketplace"] for log in logs) == marketplaces, logs
        for log in logs:
            assert (log["status"], log["attempt"]) == ("succeeded", 1), log
            assert log["items_written"] == SIZE, log
    assert api.call("GET", "/api/sync/logs", token=never_due.token).body["logs"] == []

    # Asked again within the interval, no scheduler finds them due.
    again = asyncio.run(_enqueue_due_syncs(stack, 2))
    assert not any(mine & queued for queued in again), again


def test_the_scheduler_command_queues_due_syncs_for_the_replicas(api: Api, stack: Stack) -> None:
    seller = _seller_with(api, "walmart")
    finished = subprocess.run(
        [sys.executable, "-m", "services.sync.scheduler"],
        env={
            **stack.env_of("scheduler"),
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
