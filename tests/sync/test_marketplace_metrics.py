"""Marketplace requests in the metrics, by HTTP status, against the sandbox: throttling shows as
429s beside the answers that got through, and a dropped connection as `error`."""

from __future__ import annotations

from prometheus_client import REGISTRY

from dev.sandbox import SandboxHandle
from services.sync.marketplaces import (
    AmazonCatalog,
    AmazonEndpoints,
    Pacer,
    Rate,
    WalmartCatalog,
    WalmartEndpoints,
)
from services.sync.marketplaces.pacing import DEFAULT_RATES
from tests.sync.conftest import FAST_BACKOFF, collect, set_faults, shortened_sleep, unique_account

REQUESTS = "marketsync_marketplace_requests_total"
PACING = "marketsync_marketplace_pacing_wait_seconds_total"


def requests(marketplace: str, operation: str, status: str) -> float:
    labels = {"marketplace": marketplace, "operation": operation, "status": status}
    return REGISTRY.get_sample_value(REQUESTS, labels) or 0.0


def walmart(client_id: str, endpoints: WalmartEndpoints, pacer: Pacer) -> WalmartCatalog:
    credentials = {"client_id": client_id, "client_secret": "s3cret"}
    return WalmartCatalog(credentials, endpoints, pacer, account=client_id, backoff=FAST_BACKOFF)


def test_walmart_requests_are_counted_by_status_throttled_and_dropped_ones_too(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("metrics-walmart", 300)
    set_faults(sandbox, client_id, throttle_every={"getAllItems": 2}, reset_every={"*": 5})
    before = {status: requests("walmart", "getAllItems", status) for status in ("200", "429")}
    dropped = sum(requests("walmart", op, "error") for op in ("getAllItems", "getInventories"))

    collect(walmart(client_id, walmart_endpoints, pacer).pages())

    assert requests("walmart", "getAllItems", "200") > before["200"]
    assert requests("walmart", "getAllItems", "429") > before["429"]
    assert sum(requests("walmart", op, "error") for op in ("getAllItems", "getInventories")) > (
        dropped
    )
    assert requests("walmart", "token", "200") >= 1


def test_amazon_requests_are_counted_by_status(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("metrics-amazon", 100)
    set_faults(sandbox, seller, throttle_every={"searchCatalogItems": 2})
    before = {status: requests("amazon", "searchCatalogItems", status) for status in ("2xx", "429")}
    credentials = {
        "refresh_token": seller,
        "lwa_app_id": "amzn1.application-oa2-client.demo",
        "lwa_client_secret": "amzn1.oa2-cs.v1.secret",
        "seller_id": "A1SELLER",
    }

    collect(
        AmazonCatalog(
            credentials, amazon_endpoints, pacer, account=seller, backoff=FAST_BACKOFF
        ).pages()
    )

    assert requests("amazon", "searchCatalogItems", "2xx") > before["2xx"]
    assert requests("amazon", "searchCatalogItems", "429") > before["429"]
    assert requests("amazon", "downloadReportDocument", "200") >= 1


def test_time_waiting_for_a_turn_is_counted(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints
) -> None:
    # One items page a second: every page after the first waits its turn (the test's pacer
    # sleeps a hundredth of each wait).
    rates = {**{name: Rate(1000, 1000) for name in DEFAULT_RATES}, "getAllItems": Rate(1, 1)}
    pacer = Pacer(rates, sleep=shortened_sleep)
    labels = {"marketplace": "walmart", "operation": "getAllItems"}
    before = REGISTRY.get_sample_value(PACING, labels) or 0.0

    collect(walmart(unique_account("metrics-paced", 300), walmart_endpoints, pacer).pages())

    assert (REGISTRY.get_sample_value(PACING, labels) or 0.0) > before
