"""What a sync wrote to the catalog is known as it goes: the catalog answers each batch, so
heartbeats carry the products stored so far and a sync that fails midway reports them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dev.stack import Stack
from tests.integration.conftest import Api
from tests.integration.sync_support import (
    Sandbox,
    account,
    all_products,
    new_seller,
    save_credentials,
    start_sync,
    wait_for_sync,
    walmart_credentials,
)

PRODUCTS = 1500
WRITE_BATCH = 250
# Slow item pages (50 products each) keep the sync running while the test looks at it.
SLOW_PAGES = {"getAllItems": 0.3}


def _log_once(
    api: Api, token: str, sync_id: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    give_up = time.monotonic() + 60
    while True:
        log = api.call("GET", f"/api/sync/{sync_id}", token=token).body
        if wanted(log):
            return dict(log)
        assert time.monotonic() < give_up, log
        time.sleep(0.1)


def test_a_sync_failing_midway_reports_the_products_it_wrote(api: Api, stack: Stack) -> None:
    sandbox = Sandbox(stack)
    seller = new_seller(api)
    client_id = account("written-so-far", PRODUCTS)
    save_credentials(api, seller, "walmart", walmart_credentials(client_id))
    sandbox.set_faults(client_id, delay_seconds=SLOW_PAGES)
    sync_id = start_sync(api, seller.token, "walmart")

    # A heartbeat carries the first batch's count while the sync is still reading.
    running = _log_once(
        api,
        seller.token,
        sync_id,
        lambda log: log["status"] != "queued" and log["items_written"] >= WRITE_BATCH,
    )
    assert running["status"] == "running", running

    # Then Walmart turns every access token down, a fresh one too: the sync fails at once,
    # without another attempt.
    sandbox.set_faults(client_id, delay_seconds=SLOW_PAGES, token_expires_after=0)
    log = wait_for_sync(api, seller.token, sync_id)
    assert (log["status"], log["attempt"]) == ("failed", 1), log
    assert "reconnect your Walmart account" in log["error"], log

    stored = all_products(api, seller.token)
    assert WRITE_BATCH <= log["items_written"] == len(stored) < PRODUCTS, log
    assert (log["items_unchanged"], log["items_failed"]) == (0, 0), log
