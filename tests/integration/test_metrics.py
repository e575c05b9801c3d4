"""Metrics as Prometheus reads them: one real sync through the session stack, then every process's
metrics endpoint (found in the stack's endpoints.json) and the sync log's capacity units."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dev.stack import Stack
from tests.integration.conftest import Api
from tests.integration.sync_support import (
    account,
    new_seller,
    run_sync,
    save_credentials,
    walmart_credentials,
)

pytestmark = pytest.mark.integration

PRODUCTS = 30
AUTH_INTERNAL = "marketsync.auth.v1.AuthInternalService"
CATALOG_INTERNAL = "marketsync.catalog.v1.CatalogInternalService"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample by name and labels; a metric without samples yet (a counter of no event so
    far) appears under its name with no labels, valued 0."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        samples.setdefault((_exported_name(family.name, family.type), frozenset()), 0.0)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _exported_name(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named so whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture(scope="module")
def endpoints(stack: Stack) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(stack.endpoints_file.read_text())
    return found


@pytest.fixture(scope="module")
def synced(api: Api, endpoints: dict[str, Any]) -> dict[str, Any]:
    """One Walmart sync, with the catalog's metrics from just before and just after it."""
    seller = new_seller(api)
    logged_in = api.call(
        "POST", "/api/auth/login", {"email": seller.email, "password": "correct horse battery"}
    )
    assert logged_in.status == 200, logged_in.body
    save_credentials(api, seller, "walmart", walmart_credentials(account("metrics", PRODUCTS)))
    catalog_before = scrape(endpoints["catalog"]["metrics"])
    log = run_sync(api, seller, "walmart")
    assert log["status"] == "succeeded", log
    listed = api.call("GET", "/api/products", token=seller.token)  # catalog asks auth
    assert listed.status == 200, listed.body
    return {"log": log, "catalog_before": catalog_before}


def test_endpoints_name_every_process_and_no_secret(
    stack: Stack, endpoints: dict[str, Any]
) -> None:
    assert endpoints["gateway"]["http"] == stack.gateway_url
    for name in ("auth", "catalog", "sync"):
        assert endpoints[name]["grpc"] == stack.env[f"{name.upper()}_ADDRESS"]
        assert endpoints[name]["metrics"].endswith("/metrics")
    assert endpoints["dynamodb"] == stack.env["DYNAMODB_ENDPOINT_URL"]
    assert endpoints["sandbox"] == stack.env["WALMART_API_BASE_URL"]
    assert endpoints["postgres"]
    text = stack.endpoints_file.read_text()
    for secret in _secrets(stack):
        assert secret not in text


def _secrets(stack: Stack) -> Iterable[str]:
    yield stack.env["JWT_SECRET"]
    yield stack.env["CREDENTIALS_ENCRYPTION_KEY"]
    for private in stack.private_env.values():
        yield from private.values()


def test_a_sync_log_records_the_capacity_units_the_catalog_counted(
    synced: dict[str, Any], endpoints: dict[str, Any]
) -> None:
    units = synced["log"]["capacity_units"]
    after = scrape(endpoints["catalog"]["metrics"])
    written = value(after, "marketsync_dynamodb_capacity_units_total", kind="write") - value(
        synced["catalog_before"], "marketsync_dynamodb_capacity_units_total", kind="write"
    )
    # Nothing else wrote meanwhile; a first-synced product is at least its item and its GSI1
    # entry.
    assert units["write"] == pytest.approx(written)
    assert units["write"] >= 2 * PRODUCTS
    # Before writing, the catalog reads what it holds of the batch, consistently.
    assert units["read"] > 0


def test_sync_exports_its_runs_items_and_marketplace_calls(
    synced: dict[str, Any], endpoints: dict[str, Any]
) -> None:
    samples = scrape(endpoints["sync"]["metrics"])
    assert value(samples, "marketsync_sync_runs_total", marketplace="walmart", status="succeeded")
    items = "marketsync_sync_items_total"
    assert value(samples, items, marketplace="walmart", outcome="fetched") >= PRODUCTS
    assert value(samples, items, outcome="written") >= PRODUCTS
    assert value(
        samples,
        "marketsync_marketplace_requests_total",
        marketplace="walmart",
        operation="getAllItems",
        status="200",
    )
    assert value(samples, "marketsync_sync_duration_seconds_count", marketplace="walmart")
    assert {"marketsync_sync_running", "marketsync_marketplace_pacing_wait_seconds_total"} <= (
        names(samples)
    )
    # Internal calls, by the service called and their final status, streams included.
    assert value(
        samples,
        "marketsync_grpc_client_handled_total",
        service=CATALOG_INTERNAL,
        method="WriteSyncedProducts",
        code="OK",
    )
    assert value(
        samples,
        "marketsync_grpc_client_handled_total",
        service=AUTH_INTERNAL,
        method="FinishSyncLog",
        code="OK",
    )
    assert value(samples, "marketsync_grpc_client_handling_seconds_count", method="ClaimSyncs")


def test_catalog_exports_dynamodb_calls_and_served_streams(
    synced: dict[str, Any], endpoints: dict[str, Any]
) -> None:
    samples = scrape(endpoints["catalog"]["metrics"])
    assert value(
        samples, "marketsync_dynamodb_requests_total", operation="BatchWriteItem", outcome="ok"
    )
    assert value(samples, "marketsync_dynamodb_capacity_units_total", kind="read")
    assert value(
        samples,
        "marketsync_grpc_server_handled_total",
        service=CATALOG_INTERNAL,
        method="WriteSyncedProducts",
        code="OK",
    )
    assert value(samples, "marketsync_grpc_client_handled_total", method="CheckSession")


def test_auth_exports_logins_pool_and_queue(
    synced: dict[str, Any], endpoints: dict[str, Any], api: Api
) -> None:
    refused = api.call(
        "POST", "/api/auth/login", {"email": "nobody@example.com", "password": "not it"}
    )
    assert refused.status == 401, refused.body
    samples = scrape(endpoints["auth"]["metrics"])
    assert value(samples, "marketsync_auth_logins_total", outcome="succeeded")
    assert value(samples, "marketsync_auth_logins_total", outcome="wrong_credentials")
    assert value(samples, "marketsync_auth_password_hash_seconds_count")
    assert value(samples, "marketsync_auth_db_pool_connections", state="idle") >= 1
    assert {"marketsync_auth_lockouts_total", "marketsync_sync_organizations_overdue"} <= names(
        samples
    )
    for marketplace in ("amazon", "walmart"):
        for gauge in (
            "marketsync_sync_queue_depth",
            "marketsync_sync_oldest_queued_seconds",
            "marketsync_sync_oldest_running_seconds",
        ):
            assert (gauge, frozenset({("marketplace", marketplace)})) in samples
    # A refused call is counted with the status it was refused with.
    assert value(
        samples,
        "marketsync_grpc_server_handled_total",
        service="marketsync.auth.v1.AuthService",
        method="Login",
        code="UNAUTHENTICATED",
    )
    assert value(
        samples,
        "marketsync_grpc_server_handled_total",
        service=AUTH_INTERNAL,
        method="ClaimSyncs",
        code="OK",
    )


def test_envoy_serves_its_stats_and_nothing_else_of_its_admin(
    synced: dict[str, Any], endpoints: dict[str, Any]
) -> None:
    stats_url = endpoints["gateway"]["metrics"]
    answer = httpx.get(stats_url, timeout=10)
    assert answer.status_code == 200
    assert "envoy_cluster_upstream_rq_total" in answer.text
    assert 'envoy_cluster_name="sync"' in answer.text
    base = stats_url.removesuffix("/stats/prometheus")
    for method, path in (
        ("POST", "/quitquitquit"),
        ("POST", "/healthcheck/fail"),
        ("GET", "/config_dump"),
        ("GET", "/stats/prometheus/../../config_dump"),
        ("POST", "/stats/prometheus"),
    ):
        refused = httpx.request(method, base + path, timeout=10)
        assert refused.status_code in (400, 404), (method, path, refused.status_code)
    assert httpx.get(stats_url, timeout=10).status_code == 200  # and Envoy still runs
