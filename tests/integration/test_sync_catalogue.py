"""Whole catalogues of several thousand products synced from each marketplace through Envoy,
checked item by item against the sandbox's own catalogue generators.

One organization syncs both marketplaces at once, once (the module fixture), then once more:
the slow part is Amazon's Catalog Items enrichment at its documented 2 requests a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from dev.sandbox.catalogue import amazon_catalogue, walmart_catalogue
from dev.stack import Stack
from tests.integration.conftest import Answer, Api
from tests.integration.sync_support import (
    FINAL_STATUSES,
    SYNC_DEADLINE_SECONDS,
    Sandbox,
    Seller,
    account,
    all_products,
    amazon_credentials,
    as_stored,
    assert_error,
    expected_amazon_product,
    expected_walmart_product,
    new_seller,
    save_credentials,
    start_sync,
    walmart_credentials,
)

AMAZON_SIZE = 2500
WALMART_SIZE = 3000


@dataclass
class BigSync:
    seller: Seller
    refresh_token: str
    client_id: str
    sync_ids: dict[str, str]
    first: dict[str, dict[str, Any]]
    # Every answer of GET /api/sync/{id} seen while the first syncs ran.
    observed: list[dict[str, Any]]
    # What a second start of the running Amazon sync answered.
    second_start: Answer


def _wait_for_all(
    api: Api, token: str, sync_ids: dict[str, str], seen: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each sync's log once all have ended; every answer seen on the way is added to `seen`."""
    finished: dict[str, dict[str, Any]] = {}
    give_up = time.monotonic() + SYNC_DEADLINE_SECONDS
    while len(finished) < len(sync_ids):
        for marketplace, sync_id in sync_ids.items():
            if marketplace in finished:
                continue
            answer = api.call("GET", f"/api/sync/{sync_id}", token=token)
            assert answer.status == 200, answer.body
            seen.append(answer.body)
            if answer.body["status"] in FINAL_STATUSES:
                finished[marketplace] = answer.body
        assert time.monotonic() < give_up, f"syncs still running: {seen[-2:]}"
        time.sleep(0.5)
    return finished


@pytest.fixture(scope="module")
def big_sync(api: Api) -> BigSync:
    seller = new_seller(api)
    refresh_token = account("Atzr|big", AMAZON_SIZE)
    client_id = account("big-client", WALMART_SIZE)
    save_credentials(api, seller, "amazon", amazon_credentials(refresh_token))
    save_credentials(api, seller, "walmart", walmart_credentials(client_id))
    sync_ids = {
        "amazon": start_sync(api, seller.token, "amazon"),
        "walmart": start_sync(api, seller.token, "walmart"),
    }
    second = api.call("POST", "/api/sync", {"marketplace": "amazon"}, token=seller.token)
    seen: list[dict[str, Any]] = []
    first = _wait_for_all(api, seller.token, sync_ids, seen)
    return BigSync(seller, refresh_token, client_id, sync_ids, first, seen, second)


@pytest.mark.parametrize(
    ("marketplace", "size"), [("amazon", AMAZON_SIZE), ("walmart", WALMART_SIZE)]
)
def test_a_whole_catalogue_sync_succeeds_with_every_product_counted(
    big_sync: BigSync, marketplace: str, size: int
) -> None:
    log = big_sync.first[marketplace]
    assert log["status"] == "succeeded", log
    assert log["sync_id"] == big_sync.sync_ids[marketplace]
    assert log["marketplace"] == marketplace
    assert (log["items_fetched"], log["items_written"]) == (size, size), log
    assert (log["items_unchanged"], log["items_failed"], log["error"]) == (0, 0, ""), log
    assert log["started_at"] < log["finished_at"], log
    assert log["duration_ms"] > 0, log


def _expected(big_sync: BigSync, marketplace: str) -> dict[str, dict[str, Any]]:
    """The products the sandbox's generator says the marketplace serves, by SKU."""
    if marketplace == "amazon":
        products = map(expected_amazon_product, amazon_catalogue(big_sync.refresh_token))
    else:
        products = map(expected_walmart_product, walmart_catalogue(big_sync.client_id))
    return {product["sku"]: product for product in products}


@pytest.mark.parametrize("marketplace", ["amazon", "walmart"])
def test_every_product_and_attribute_is_in_the_catalog(
    api: Api, big_sync: BigSync, marketplace: str
) -> None:
    expected = _expected(big_sync, marketplace)
    stored = all_products(api, big_sync.seller.token, marketplace)
    assert len(stored) == len(expected), "a product is missing or listed twice"
    for product in stored:
        assert as_stored(product) == expected[product["sku"]]
        assert product["created_at"] == product["updated_at"] == product["synced_at"], product
        assert product["listings"][0]["synced_at"] == product["synced_at"], product


def test_progress_is_visible_while_the_sync_runs(big_sync: BigSync) -> None:
    running = [log for log in big_sync.observed if log["status"] == "running"]
    assert running, "no GET /api/sync/{id} answered running"
    for log in running:
        assert log["started_at"] and "finished_at" not in log, log
        # What the catalog has acknowledged so far, never more than was fetched.
        assert log["items_written"] <= log["items_fetched"] and log["error"] == "", log
    # Heartbeats carry how many items were fetched so far, before the end is known.
    amazon = [log for log in running if log["marketplace"] == "amazon"]
    assert any(0 < log["items_fetched"] < AMAZON_SIZE for log in amazon), amazon[-3:]
    fetched = [log["items_fetched"] for log in amazon]
    assert fetched == sorted(fetched)


def test_a_second_start_of_a_running_sync_is_refused(big_sync: BigSync) -> None:
    assert_error(big_sync.second_start, 409, "amazon", "already queued or running")


def test_running_the_sync_again_writes_nothing(api: Api, stack: Stack, big_sync: BigSync) -> None:
    token = big_sync.seller.token
    sandbox = Sandbox(stack)
    enrichment_calls = sandbox.calls(big_sync.refresh_token)["searchCatalogItems"]
    sync_ids = {marketplace: start_sync(api, token, marketplace) for marketplace in big_sync.first}
    again = _wait_for_all(api, token, sync_ids, [])
    for marketplace, log in again.items():
        fetched = big_sync.first[marketplace]["items_fetched"]
        assert log["status"] == "succeeded", log
        assert log["items_fetched"] == log["items_unchanged"] == fetched, log
        assert (log["items_written"], log["items_failed"]) == (0, 0), log
        # Every 50th product, read one by one: still as first written, never updated since.
        for sku, product in list(_expected(big_sync, marketplace).items())[::50]:
            stored = api.call("GET", f"/api/products/{sku}", token=token)
            assert stored.status == 200, stored.body
            assert as_stored(stored.body) == product
            assert stored.body["updated_at"] == stored.body["created_at"], stored.body
    # Brand, category and image of unchanged ASINs come from the catalog, not Catalog Items.
    assert sandbox.calls(big_sync.refresh_token)["searchCatalogItems"] == enrichment_calls
