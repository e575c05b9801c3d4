"""Products written by syncs through the internal WriteSyncedProducts RPC, as REST shows them,
and who may call that RPC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dev.stack import CALLERS, Stack
from marketsync.service_auth import AUDIENCE, SERVICE_METADATA_KEY, ServiceCredential
from tests.integration.catalog_support import (
    Org,
    assert_error,
    new_org,
    product_body,
    put,
    synced_product,
    timestamp,
    watch_server_errors,
    write_synced,
    write_synced_status,
)
from tests.integration.conftest import Api

WRITE_SYNCED_PATH = "/marketsync.catalog.v1.CatalogInternalService/WriteSyncedProducts"


@pytest.fixture(autouse=True)
def _no_server_errors(api: Api) -> Iterator[None]:
    yield from watch_server_errors(api)


@pytest.fixture
def org(api: Api) -> Org:
    return new_org(api)


def _get(api: Api, org: Org, sku: str) -> dict[str, Any]:
    answer = api.call("GET", f"/api/products/{sku}", token=org.token)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_a_sku_synced_from_both_marketplaces_shows_both_listings(
    api: Api, stack: Stack, org: Org
) -> None:
    amazon = synced_product(
        "MUG-1", "Mug on Amazon", "9.99", "B0MUG", "Active", asin="B0MUG", inventory_quantity=4
    )
    answer = write_synced(stack, org, "amazon", [amazon])
    assert (answer.written, answer.unchanged, list(answer.failed)) == (1, 0, [])
    walmart = synced_product(
        "MUG-1", "Mug on Walmart", "8.50", "W123", "PUBLISHED", brand="Acme", inventory_quantity=6
    )
    assert write_synced(stack, org, "walmart", [walmart]).written == 1

    product = _get(api, org, "MUG-1")
    assert product["marketplace"] == "walmart"
    assert (product["title"], product["price"], product["currency"]) == (
        "Mug on Walmart",
        "8.50",
        "USD",
    )
    assert (product["brand"], product["inventory_quantity"], product["asin"]) == ("Acme", 6, "")
    listings = product["listings"]
    assert isinstance(listings, list)
    assert [
        {key: value for key, value in listing.items() if key != "synced_at"} for listing in listings
    ] == [
        {
            "marketplace": "amazon",
            "price": "9.99",
            "currency": "USD",
            "inventory_quantity": 4,
            "external_id": "B0MUG",
            "status": "Active",
        },
        {
            "marketplace": "walmart",
            "price": "8.50",
            "currency": "USD",
            "inventory_quantity": 6,
            "external_id": "W123",
            "status": "PUBLISHED",
        },
    ]
    amazon_synced, walmart_synced = (timestamp(listing["synced_at"]) for listing in listings)
    assert amazon_synced < walmart_synced == timestamp(str(product["synced_at"]))
    history = api.call("GET", "/api/products/MUG-1/price-history", token=org.token).body
    assert [point["price"] for point in history["points"]] == ["9.99", "8.50"]


def test_the_same_sync_again_writes_nothing(api: Api, stack: Stack, org: Org) -> None:
    products = [synced_product(f"SKU-{n}", f"Item {n}", "5.00", f"W{n}") for n in range(30)]
    assert write_synced(stack, org, "walmart", products[:10], products[10:]).written == 30
    before = _get(api, org, "SKU-3")
    again = write_synced(stack, org, "walmart", products)
    assert (again.written, again.unchanged, list(again.failed)) == (0, 30, [])
    assert _get(api, org, "SKU-3") == before


def test_a_hand_written_put_keeps_the_listings(api: Api, stack: Stack, org: Org) -> None:
    write_synced(stack, org, "amazon", [synced_product("MUG-1", "Synced", "9.99", "B0MUG")])
    synced = _get(api, org, "MUG-1")
    stored = put(api, org, "MUG-1", product_body(title="By hand", price="11.00"))
    assert stored.status == 200, stored.body
    assert stored.body["marketplace"] == ""
    assert stored.body["title"] == "By hand"
    assert stored.body["listings"] == synced["listings"]
    assert stored.body["synced_at"] == synced["synced_at"]
    assert _get(api, org, "MUG-1") == stored.body


def test_invalid_synced_products_fail_alone(api: Api, stack: Stack, org: Org) -> None:
    answer = write_synced(
        stack,
        org,
        "amazon",
        [
            synced_product("GOOD", "Good", "1.00", "B1"),
            synced_product("BAD#SKU", "Bad", "1.00", "B2"),
            synced_product("CHEAP", "Cheap", "0.001", "B3"),
        ],
    )
    assert answer.written == 1
    assert {failed.sku for failed in answer.failed} == {"BAD#SKU", "CHEAP"}
    assert _get(api, org, "GOOD")["listings"][0]["external_id"] == "B1"


def test_a_sku_twice_in_a_synced_batch_is_judged_by_its_last_occurrence(
    api: Api, stack: Stack, org: Org
) -> None:
    answer = write_synced(
        stack,
        org,
        "walmart",
        [
            synced_product("FIXED", "Bad copy", "abc", "W1"),
            synced_product("FIXED", "Good copy", "2.00", "W1"),
            synced_product("BROKEN", "Good copy", "2.00", "W2"),
            synced_product("BROKEN", "Bad copy", "abc", "W2"),
        ],
    )
    assert answer.written == 1
    assert [failed.sku for failed in answer.failed] == ["BROKEN"]
    assert _get(api, org, "FIXED")["title"] == "Good copy"
    assert_error(api.call("GET", "/api/products/BROKEN", token=org.token), 404)


def _refused(api: Api, org: Org) -> None:
    assert_error(api.call("GET", "/api/products/INTRUDER", token=org.token), 404)


def test_the_internal_rpc_refuses_a_user_token(api: Api, stack: Stack, org: Org) -> None:
    metadata = (("authorization", f"Bearer {org.token}"),)
    status = write_synced_status(stack.env["CATALOG_ADDRESS"], org, metadata)
    assert status == grpc.StatusCode.UNAUTHENTICATED
    # A user token presented where the service credential goes is no credential either.
    metadata = ((SERVICE_METADATA_KEY, org.token),)
    status = write_synced_status(stack.env["CATALOG_ADDRESS"], org, metadata)
    assert status == grpc.StatusCode.UNAUTHENTICATED
    _refused(api, org)


def test_the_internal_rpc_refuses_a_call_without_credential(
    api: Api, stack: Stack, org: Org
) -> None:
    status = write_synced_status(stack.env["CATALOG_ADDRESS"], org, ())
    assert status == grpc.StatusCode.UNAUTHENTICATED
    _refused(api, org)


@pytest.mark.parametrize("signer", ["scheduler", "a stranger"])
def test_the_internal_rpc_refuses_a_credential_signed_with_another_key(
    api: Api, stack: Stack, org: Org, signer: str
) -> None:
    """Only sync may write synced products, and only sync's own key can sign as sync."""
    key = stack.service_key(signer) if signer in CALLERS else Ed25519PrivateKey.generate()
    forged = ServiceCredential(key, "sync").token()
    assert jwt.decode(forged, options={"verify_signature": False})["aud"] == AUDIENCE
    metadata = ((SERVICE_METADATA_KEY, forged),)
    status = write_synced_status(stack.env["CATALOG_ADDRESS"], org, metadata)
    assert status == grpc.StatusCode.UNAUTHENTICATED
    _refused(api, org)


def _post_internal_path(api: Api, stack: Stack, org: Org, content_type: str) -> httpx.Response:
    """A WriteSyncedProducts request sent to Envoy with every credential there is."""
    credential = ServiceCredential(stack.service_key("sync"), "sync").token()
    return api.client.post(
        WRITE_SYNCED_PATH,
        content=b'{"organization_id": "%s", "marketplace": "amazon"}' % org.id.encode(),
        headers={
            "content-type": content_type,
            SERVICE_METADATA_KEY: credential,
            "authorization": f"Bearer {org.token}",
        },
    )


def test_envoy_does_not_route_the_internal_rpc(api: Api, stack: Stack, org: Org) -> None:
    response = _post_internal_path(api, stack, org, "application/json")
    assert response.status_code == 404
    assert response.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    _refused(api, org)


def test_envoy_answers_a_grpc_framed_internal_call_unimplemented(
    api: Api, stack: Stack, org: Org
) -> None:
    # Envoy words its local replies to gRPC requests as gRPC: HTTP 200 with a grpc-status.
    response = _post_internal_path(api, stack, org, "application/grpc")
    assert response.headers["grpc-status"] == str(grpc.StatusCode.UNIMPLEMENTED.value[0])
    assert "no such path" in response.headers["grpc-message"]
    _refused(api, org)


def test_native_grpc_through_envoy_cannot_reach_the_internal_rpc(
    api: Api, stack: Stack, org: Org
) -> None:
    gateway = f"127.0.0.1:{stack.env['GATEWAY_PORT']}"
    credential = ServiceCredential(stack.service_key("sync"), "sync").token()
    status = write_synced_status(gateway, org, ((SERVICE_METADATA_KEY, credential),))
    assert status == grpc.StatusCode.UNIMPLEMENTED
    _refused(api, org)
