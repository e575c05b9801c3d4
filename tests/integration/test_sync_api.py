"""The sync API through Envoy: starting, reading and listing syncs, who may do what, what a sync
of rejected credentials or a misbehaving marketplace ends as, and tenant isolation.

Syncs here are small (`-200` products) and each test uses sandbox accounts of its own.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dev.sandbox.catalogue import amazon_catalogue, walmart_catalogue
from dev.stack import Stack
from tests.integration.conftest import Api
from tests.integration.sync_support import (
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
    run_sync,
    save_credentials,
    start_sync,
    token_in_role,
    wait_for_status,
    wait_for_sync,
    walmart_credentials,
)

SMALL = 200


@pytest.fixture(scope="module")
def sandbox(stack: Stack) -> Sandbox:
    return Sandbox(stack)


def amazon_seller(api: Api, size: int = SMALL, **overrides: str) -> tuple[Seller, str]:
    """A new organization with Amazon credentials of its own sandbox account."""
    seller = new_seller(api)
    refresh_token = overrides.pop("refresh_token", None) or account("Atzr|sync", size)
    save_credentials(api, seller, "amazon", amazon_credentials(refresh_token, **overrides))
    return seller, refresh_token


def walmart_seller(api: Api, size: int = SMALL, **overrides: str) -> tuple[Seller, str]:
    """A new organization with Walmart credentials of its own sandbox account."""
    seller = new_seller(api)
    client_id = overrides.pop("client_id", None) or account("sync-client", size)
    save_credentials(api, seller, "walmart", walmart_credentials(client_id, **overrides))
    return seller, client_id


def assert_whole_catalogue(api: Api, seller: Seller, marketplace: str, account_name: str) -> None:
    if marketplace == "amazon":
        expected = [expected_amazon_product(item) for item in amazon_catalogue(account_name)]
    else:
        expected = [expected_walmart_product(item) for item in walmart_catalogue(account_name)]
    stored = {p["sku"]: as_stored(p) for p in all_products(api, seller.token, marketplace)}
    assert stored == {product["sku"]: product for product in expected}


# Starting and reading a sync


def test_a_sync_answers_queued_then_shows_its_outcome_and_counts(api: Api) -> None:
    seller, client_id = walmart_seller(api)
    started = api.call("POST", "/api/sync", {"marketplace": "walmart"}, token=seller.token)
    assert started.status == 200, started.body
    assert started.body["status"] == "queued"
    assert isinstance(started.body["sync_id"], str) and started.body["sync_id"]

    log = wait_for_sync(api, seller.token, started.body["sync_id"])
    assert log["sync_id"] == started.body["sync_id"]
    assert log["marketplace"] == "walmart"
    assert log["status"] == "succeeded", log
    assert (log["items_fetched"], log["items_written"]) == (SMALL, SMALL), log
    assert (log["items_unchanged"], log["items_failed"], log["error"]) == (0, 0, ""), log
    assert log["items_total"] == SMALL, log
    assert log["queued_at"] <= log["started_at"] <= log["finished_at"], log
    assert (log["duration_ms"] >= 0, log["attempt"]) == (True, 1), log
    assert_whole_catalogue(api, seller, "walmart", client_id)


def test_a_small_amazon_sync_writes_the_whole_catalogue(api: Api) -> None:
    seller, refresh_token = amazon_seller(api)
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "succeeded", log
    assert (log["items_fetched"], log["items_written"], log["items_failed"]) == (SMALL, SMALL, 0)
    assert log["items_total"] == SMALL, log
    assert_whole_catalogue(api, seller, "amazon", refresh_token)


def test_a_running_sync_is_shown_running_and_a_second_start_gets_409(
    api: Api, sandbox: Sandbox
) -> None:
    seller, client_id = walmart_seller(api)
    # Slow pages keep the sync running while we look at it.
    sandbox.set_faults(client_id, delay_seconds={"getAllItems": 1})
    sync_id = start_sync(api, seller.token, "walmart")

    running = wait_for_status(api, seller.token, sync_id, "running")
    assert running["marketplace"] == "walmart"
    assert running["started_at"] and "finished_at" not in running, running
    assert (running["items_written"], running["error"], running["attempt"]) == (0, "", 1)

    assert_error(
        api.call("POST", "/api/sync", {"marketplace": "walmart"}, token=seller.token),
        409,
        "walmart",
        "already queued or running",
    )
    # Another marketplace of the same organization is its own sync.
    save_credentials(api, seller, "amazon", amazon_credentials(account("Atzr|sync", 0)))
    other = run_sync(api, seller, "amazon")
    assert other["status"] == "succeeded", other

    assert wait_for_sync(api, seller.token, sync_id)["status"] == "succeeded"
    # Once it has ended, a new one may start.
    assert run_sync(api, seller, "walmart")["status"] == "succeeded"


@pytest.mark.parametrize(
    ("marketplace", "slow_calls"),
    [
        # Walmart says the size with the first page of items; the next pages come slowly.
        ("walmart", {"getAllItems": 2}),
        # Amazon's size is the downloaded report's; enriching its pages comes slowly.
        ("amazon", {"getReportDocument": 2, "searchCatalogItems": 1}),
    ],
)
def test_a_running_sync_shows_the_catalogue_size_once_the_marketplace_has_said_it(
    api: Api, sandbox: Sandbox, marketplace: str, slow_calls: dict[str, float]
) -> None:
    make_seller = amazon_seller if marketplace == "amazon" else walmart_seller
    seller, account_name = make_seller(api)
    # Slow calls: the size is unknown for a while, and the sync still runs for a few seconds
    # once it is known.
    sandbox.set_faults(account_name, delay_seconds=slow_calls)
    sync_id = start_sync(api, seller.token, marketplace)

    assert "items_total" not in wait_for_status(api, seller.token, sync_id, "running")
    sized = wait_for_total(api, seller.token, sync_id)
    assert (sized["status"], sized["items_total"]) == ("running", SMALL), sized
    assert sized["items_fetched"] < SMALL, sized

    done = wait_for_sync(api, seller.token, sync_id)
    assert (done["status"], done["items_fetched"], done["items_total"]) == (
        "succeeded", SMALL, SMALL
    ), done  # fmt: skip
    [listed] = api.call("GET", "/api/sync/logs", token=seller.token).body["logs"]
    assert listed["items_total"] == SMALL, listed


def wait_for_total(api: Api, token: str, sync_id: str) -> dict[str, Any]:
    """The sync's log once it shows the catalogue's size."""
    give_up = time.monotonic() + 30
    while "items_total" not in (log := api.call("GET", f"/api/sync/{sync_id}", token=token).body):
        assert time.monotonic() < give_up, f"sync {sync_id} has no items_total: {log}"
        time.sleep(0.1)
    return dict(log)


def test_starting_without_saved_credentials_is_400(api: Api) -> None:
    seller = new_seller(api)
    for marketplace in ("amazon", "walmart"):
        assert_error(
            api.call("POST", "/api/sync", {"marketplace": marketplace}, token=seller.token),
            400,
            marketplace,
            "credentials",
        )
    logs = api.call("GET", "/api/sync/logs", token=seller.token)
    assert logs.body["logs"] == []


def test_starting_after_the_credentials_were_deleted_is_400(api: Api) -> None:
    seller, _ = walmart_seller(api)
    assert run_sync(api, seller, "walmart")["status"] == "succeeded"
    deleted = api.call("DELETE", "/api/credentials/walmart", token=seller.token)
    assert deleted.status == 200, deleted.body
    assert_error(
        api.call("POST", "/api/sync", {"marketplace": "walmart"}, token=seller.token),
        400,
        "walmart",
        "credentials",
    )


@pytest.mark.parametrize("marketplace", ["ebay", "", "Amazon", "amazon "])
def test_a_marketplace_other_than_amazon_or_walmart_is_400(api: Api, marketplace: str) -> None:
    seller, _ = walmart_seller(api)
    assert_error(
        api.call("POST", "/api/sync", {"marketplace": marketplace}, token=seller.token),
        400,
        "marketplace",
    )


def test_a_viewer_reads_syncs_but_cannot_start_one(api: Api) -> None:
    seller, _ = walmart_seller(api)
    log = run_sync(api, seller, "walmart")
    viewer = token_in_role(api, seller, "viewer")

    assert_error(api.call("POST", "/api/sync", {"marketplace": "walmart"}, token=viewer), 403)
    seen = api.call("GET", f"/api/sync/{log['sync_id']}", token=viewer)
    assert seen.status == 200 and seen.body == log, seen.body
    listed = api.call("GET", "/api/sync/logs", token=viewer)
    assert listed.status == 200 and listed.body["logs"] == [log], listed.body

    member = token_in_role(api, seller, "member")
    assert wait_for_sync(api, member, start_sync(api, member, "walmart"))["status"] == "succeeded"


def test_sync_routes_need_a_token(api: Api) -> None:
    assert_error(api.call("POST", "/api/sync", {"marketplace": "walmart"}), 401)
    assert_error(api.call("GET", "/api/sync/logs"), 401)
    assert_error(api.call("GET", "/api/sync/1"), 401)


def test_another_organizations_sync_is_not_found(api: Api) -> None:
    seller, _ = walmart_seller(api)
    log = run_sync(api, seller, "walmart")
    outsider = new_seller(api)
    assert_error(api.call("GET", f"/api/sync/{log['sync_id']}", token=outsider.token), 404)
    assert api.call("GET", "/api/sync/logs", token=outsider.token).body["logs"] == []
    assert_error(api.call("GET", "/api/sync/987654321", token=seller.token), 404)


def test_malformed_sync_requests_are_400_json(api: Api) -> None:
    seller = new_seller(api)
    for sync_id in ("not-a-number", "99999999999999999999999"):
        assert_error(api.call("GET", f"/api/sync/{sync_id}", token=seller.token), 400, "sync_id")
    assert_error(api.call("GET", "/api/sync/-5", token=seller.token), 404, "sync_id")
    assert_error(
        api.call("POST", "/api/sync", {"marketplace": 5}, token=seller.token), 400, "marketplace"
    )
    assert_error(api.call("POST", "/api/sync", token=seller.token, content=b"{not json"), 400)


def test_sync_logs_are_listed_newest_first_page_by_page(api: Api) -> None:
    seller, _ = walmart_seller(api, size=5)
    save_credentials(api, seller, "amazon", amazon_credentials(account("Atzr|sync", 0)))
    sync_ids = [run_sync(api, seller, marketplace)["sync_id"] for marketplace in
                ("walmart", "amazon", "walmart")]  # fmt: skip

    first = api.call("GET", "/api/sync/logs", token=seller.token, params={"page_size": 2})
    assert first.status == 200, first.body
    assert [log["sync_id"] for log in first.body["logs"]] == sync_ids[::-1][:2]
    assert [log["marketplace"] for log in first.body["logs"]] == ["walmart", "amazon"]
    assert all(log["status"] == "succeeded" for log in first.body["logs"])
    assert first.body["next_page_token"]

    second = api.call(
        "GET", "/api/sync/logs", token=seller.token,
        params={"page_size": 2, "page_token": first.body["next_page_token"]},
    )  # fmt: skip
    assert second.status == 200, second.body
    assert [log["sync_id"] for log in second.body["logs"]] == sync_ids[:1]
    assert second.body["next_page_token"] == ""

    everything = api.call("GET", "/api/sync/logs", token=seller.token)
    assert [log["sync_id"] for log in everything.body["logs"]] == sync_ids[::-1]
    assert everything.body["next_page_token"] == ""


def test_a_sync_log_page_token_of_another_organization_or_forged_is_400(api: Api) -> None:
    seller, _ = walmart_seller(api, size=0)
    for _ in range(2):
        run_sync(api, seller, "walmart")
    page = api.call("GET", "/api/sync/logs", token=seller.token, params={"page_size": 1})
    token = page.body["next_page_token"]
    assert token

    outsider = new_seller(api)
    for page_token in (token, token[:-2] + "AA", "not-a-token"):
        assert_error(
            api.call(
                "GET", "/api/sync/logs", token=outsider.token, params={"page_token": page_token}
            ),
            400,
            "page_token",
        )


@pytest.mark.parametrize("page_size", [-1, 0, 101])
def test_a_sync_log_page_size_out_of_range_is_400(api: Api, page_size: int) -> None:
    seller = new_seller(api)
    assert_error(
        api.call("GET", "/api/sync/logs", token=seller.token, params={"page_size": page_size}),
        400,
        "page_size",
    )


# Credentials the marketplace rejects


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {"lwa_app_id": "amzn1.application-oa2-client.invalid"},
            ("lwa_app_id", "lwa_client_secret"),
        ),
        ({"lwa_client_secret": "invalid-secret"}, ("lwa_app_id", "lwa_client_secret")),
        ({"refresh_token": "Atzr|revoked-refresh-token"}, ("refresh token", "reconnect")),
    ],
)
def test_amazon_credentials_it_rejects_fail_the_sync_naming_them(
    api: Api, overrides: dict[str, str], named: tuple[str, ...]
) -> None:
    seller = new_seller(api)
    fields = {**amazon_credentials(account("Atzr|sync", SMALL)), **overrides}
    save_credentials(api, seller, "amazon", fields)
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "failed", log
    assert log["items_fetched"] == log["items_written"] == 0, log
    assert "Amazon" in log["error"], log
    for part in named:
        assert part in log["error"], log
    assert all_products(api, seller.token) == []


def test_walmart_credentials_it_rejects_fail_the_sync_naming_them(api: Api) -> None:
    seller, _ = walmart_seller(api, client_id=account("invalid-client", SMALL))
    log = run_sync(api, seller, "walmart")
    assert log["status"] == "failed", log
    assert "Walmart" in log["error"] and "client_id" in log["error"], log
    assert "client_secret" in log["error"], log


def test_corrected_credentials_are_used_by_the_next_sync(api: Api) -> None:
    refresh_token = account("Atzr|sync", SMALL)
    seller, _ = amazon_seller(api, refresh_token=refresh_token, lwa_client_secret="invalid")
    assert run_sync(api, seller, "amazon")["status"] == "failed"
    save_credentials(api, seller, "amazon", amazon_credentials(refresh_token))
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "succeeded", log
    assert log["items_written"] == SMALL


# A misbehaving marketplace


def test_amazon_throttling_every_few_calls_is_waited_out(api: Api, sandbox: Sandbox) -> None:
    seller, refresh_token = amazon_seller(api)
    sandbox.set_faults(refresh_token, throttle_every={"*": 3})
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "succeeded", log
    assert log["items_written"] == SMALL
    calls = sandbox.calls(refresh_token)
    # The first call of each operation was throttled and retried.
    assert calls["createReport"] >= 2 and calls["searchCatalogItems"] > SMALL // 20, calls
    assert_whole_catalogue(api, seller, "amazon", refresh_token)


def test_walmart_throttling_every_few_calls_is_waited_out(api: Api, sandbox: Sandbox) -> None:
    seller, client_id = walmart_seller(api)
    sandbox.set_faults(client_id, throttle_every={"*": 3})
    log = run_sync(api, seller, "walmart")
    assert log["status"] == "succeeded", log
    assert log["items_written"] == SMALL
    calls = sandbox.calls(client_id)
    assert calls["walmartToken"] >= 2 and calls["getAllItems"] > SMALL // 50, calls
    assert_whole_catalogue(api, seller, "walmart", client_id)


def test_a_cancelled_amazon_report_is_an_empty_catalogue(api: Api, sandbox: Sandbox) -> None:
    seller, refresh_token = amazon_seller(api)
    sandbox.set_faults(refresh_token, report_outcome="CANCELLED")
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "succeeded", log
    assert (log["items_fetched"], log["items_written"], log["error"]) == (0, 0, ""), log
    assert all_products(api, seller.token) == []


def test_a_sync_whose_three_attempts_fail_ends_failed_with_the_last_reason(
    api: Api, sandbox: Sandbox
) -> None:
    seller, refresh_token = amazon_seller(api)
    # A FATAL report may pass on another try: the sync is retried, then fails for good.
    sandbox.set_faults(refresh_token, report_outcome="FATAL")
    log = run_sync(api, seller, "amazon")
    assert (log["status"], log["attempt"]) == ("failed", 3), log
    assert "FATAL" in log["error"] and "try again later" in log["error"], log
    assert sandbox.calls(refresh_token)["createReport"] == 3
    assert all_products(api, seller.token) == []


@pytest.mark.parametrize("marketplace", ["amazon", "walmart"])
def test_an_access_token_expiring_mid_sync_is_renewed(
    api: Api, sandbox: Sandbox, marketplace: str
) -> None:
    make_seller = amazon_seller if marketplace == "amazon" else walmart_seller
    seller, account_name = make_seller(api)
    sandbox.set_faults(account_name, token_expires_after=4)
    log = run_sync(api, seller, marketplace)
    assert log["status"] == "succeeded", log
    assert log["items_written"] == SMALL
    token_calls = sandbox.calls(account_name)[
        "lwaToken" if marketplace == "amazon" else "walmartToken"
    ]
    assert token_calls >= 2
    assert_whole_catalogue(api, seller, marketplace, account_name)


@pytest.mark.parametrize("marketplace", ["amazon", "walmart"])
def test_empty_bodied_502s_are_retried_not_taken_for_the_end(
    api: Api, sandbox: Sandbox, marketplace: str
) -> None:
    make_seller = amazon_seller if marketplace == "amazon" else walmart_seller
    seller, account_name = make_seller(api)
    sandbox.set_faults(account_name, bad_gateway_every={"*": 3})
    log = run_sync(api, seller, marketplace)
    assert log["status"] == "succeeded", log
    assert (log["items_fetched"], log["items_written"]) == (SMALL, SMALL), log
    assert_whole_catalogue(api, seller, marketplace, account_name)


@pytest.mark.parametrize(
    ("marketplace", "operation"), [("amazon", "searchCatalogItems"), ("walmart", "getAllItems")]
)
def test_a_connection_reset_mid_page_is_retried(
    api: Api, sandbox: Sandbox, marketplace: str, operation: str
) -> None:
    make_seller = amazon_seller if marketplace == "amazon" else walmart_seller
    seller, account_name = make_seller(api)
    sandbox.set_faults(account_name, reset_every={operation: 2})
    log = run_sync(api, seller, marketplace)
    assert log["status"] == "succeeded", log
    assert (log["items_fetched"], log["items_written"]) == (SMALL, SMALL), log
    assert_whole_catalogue(api, seller, marketplace, account_name)


def test_unreadable_prices_make_a_partial_sync_naming_the_skus(api: Api, sandbox: Sandbox) -> None:
    seller, refresh_token = amazon_seller(api)
    sandbox.set_faults(refresh_token, bad_price_every=50)
    log = run_sync(api, seller, "amazon")
    assert log["status"] == "partial", log
    assert (log["items_fetched"], log["items_written"], log["items_failed"]) == (SMALL, 196, 4)
    for sku in ("AMZ-000049", "AMZ-000099", "AMZ-000149", "AMZ-000199"):
        assert sku in log["error"], log
    assert "price" in log["error"] and "N/A" in log["error"], log
    stored = {product["sku"] for product in all_products(api, seller.token)}
    assert len(stored) == 196 and "AMZ-000049" not in stored


# Tenants


def test_two_organizations_syncing_one_seller_get_separate_copies(api: Api) -> None:
    refresh_token = account("Atzr|shared", SMALL)
    first, _ = amazon_seller(api, refresh_token=refresh_token)
    second, _ = amazon_seller(api, refresh_token=refresh_token)
    assert run_sync(api, first, "amazon")["items_written"] == SMALL
    # The second organization's first sync writes its own copy of every product.
    assert run_sync(api, second, "amazon")["items_written"] == SMALL

    deleted = api.call("DELETE", "/api/products/AMZ-000007", token=first.token)
    assert deleted.status == 200, deleted.body
    assert_error(api.call("GET", "/api/products/AMZ-000007", token=first.token), 404)
    kept = api.call("GET", "/api/products/AMZ-000007", token=second.token)
    assert kept.status == 200 and kept.body["sku"] == "AMZ-000007", kept.body
    assert len(all_products(api, second.token)) == SMALL
    assert_whole_catalogue(api, second, "amazon", refresh_token)

    # A sync of the second organization never writes into the first.
    again = run_sync(api, second, "amazon")
    assert (again["items_written"], again["items_unchanged"]) == (0, SMALL), again
    assert len(all_products(api, first.token)) == SMALL - 1
    # The first organization's own sync brings its deleted product back.
    assert run_sync(api, first, "amazon")["items_written"] == 1
