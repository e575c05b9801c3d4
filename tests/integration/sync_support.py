"""Helpers shared by the sync integration tests: sellers, credentials, syncs, the sandbox's
switches, and the products a sync should write, rebuilt from the sandbox's own catalogue generators.

Every test names its own sandbox account (a unique Amazon refresh token or Walmart client id):
fault switches and call counts are per account, so tests never see each other's faults.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from dev.sandbox.catalogue import AmazonListing, WalmartItem
from dev.stack import Stack
from tests.integration.conftest import Answer, Api

SYNC_DEADLINE_SECONDS = 240.0
FINAL_STATUSES = ("succeeded", "partial", "failed")
# gRPC codes Envoy prints in the JSON error body, by HTTP status: 400 is either
# INVALID_ARGUMENT or FAILED_PRECONDITION.
GRPC_CODES_BY_STATUS = {400: {3, 9}, 401: {16}, 403: {7}, 404: {5}, 409: {6}}


@dataclass(frozen=True)
class Seller:
    """An organization and its owner's token."""

    organization_id: str
    token: str
    email: str


def new_seller(api: Api) -> Seller:
    registered = api.register()
    return Seller(
        organization_id=registered["organization"]["id"],
        token=registered["token"],
        email=registered["user"]["email"],
    )


def token_in_role(api: Api, seller: Seller, role: str) -> str:
    """A token for the seller's organization held by a new user who accepted an invitation in
    `role`."""
    user = api.register()
    invited = api.call(
        "POST", "/api/organization/members", {"email": user["user"]["email"], "role": role},
        token=seller.token,
    )  # fmt: skip
    assert invited.status == 200, invited.body
    accepted = api.call(
        "POST", f"/api/invitations/{invited.body['invitation']['id']}:accept", {},
        token=user["token"],
    )  # fmt: skip
    assert accepted.status == 200, accepted.body
    switched = api.call(
        "POST", "/api/auth/switch-organization", {"organization_id": seller.organization_id},
        token=user["token"],
    )  # fmt: skip
    assert switched.status == 200, switched.body
    return str(switched.body["token"])


def account(prefix: str, size: int) -> str:
    """A sandbox account of its own serving `size` products (the sandbox reads the suffix)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}-{size}"


def amazon_credentials(refresh_token: str, **overrides: str) -> dict[str, str]:
    return {
        "refresh_token": refresh_token,
        "lwa_app_id": "amzn1.application-oa2-client.sandbox",
        "lwa_client_secret": "sandbox-lwa-client-secret",
        "seller_id": "A2SANDBOXSELLER",
        **overrides,
    }


def walmart_credentials(client_id: str, **overrides: str) -> dict[str, str]:
    return {"client_id": client_id, "client_secret": "sandbox-walmart-secret", **overrides}


def save_credentials(api: Api, seller: Seller, marketplace: str, fields: dict[str, str]) -> None:
    saved = api.call(
        "PUT", f"/api/credentials/{marketplace}", {"credentials": fields}, token=seller.token
    )
    assert saved.status == 200, saved.body


def start_sync(api: Api, token: str, marketplace: str) -> str:
    started = api.call("POST", "/api/sync", {"marketplace": marketplace}, token=token)
    assert started.status == 200, started.body
    assert started.body["status"] == "queued", started.body
    return str(started.body["sync_id"])


def wait_for_sync(
    api: Api, token: str, sync_id: str, deadline: float = SYNC_DEADLINE_SECONDS
) -> dict[str, Any]:
    """The sync's log once it has ended."""
    give_up = time.monotonic() + deadline
    while True:
        answer = api.call("GET", f"/api/sync/{sync_id}", token=token)
        assert answer.status == 200, answer.body
        if answer.body["status"] in FINAL_STATUSES:
            return dict(answer.body)
        assert time.monotonic() < give_up, f"sync {sync_id} still running: {answer.body}"
        time.sleep(0.25)


def wait_for_status(
    api: Api, token: str, sync_id: str, status: str, deadline: float = 30.0
) -> dict[str, Any]:
    """The sync's log once it shows `status`."""
    give_up = time.monotonic() + deadline
    while True:
        answer = api.call("GET", f"/api/sync/{sync_id}", token=token)
        assert answer.status == 200, answer.body
        if answer.body["status"] == status:
            return dict(answer.body)
        assert time.monotonic() < give_up, f"sync {sync_id} is not {status}: {answer.body}"
        time.sleep(0.1)


def run_sync(api: Api, seller: Seller, marketplace: str) -> dict[str, Any]:
    return wait_for_sync(api, seller.token, start_sync(api, seller.token, marketplace))


def all_products(api: Api, token: str, marketplace: str | None = None) -> list[dict[str, Any]]:
    """Every product of the token's organization, paged through 100 at a time."""
    params: dict[str, Any] = {"page_size": 100}
    if marketplace:
        params["marketplace"] = marketplace
    products: list[dict[str, Any]] = []
    while True:
        page = api.call("GET", "/api/products", token=token, params=params)
        assert page.status == 200, page.body
        products.extend(page.body["products"])
        if not page.body["next_page_token"]:
            return products
        params["page_token"] = page.body["next_page_token"]


def assert_error(answer: Answer, status: int, *message_parts: str) -> None:
    """A JSON error answer with the status, its gRPC `code`, and a `message` naming the parts."""
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    assert isinstance(answer.body, dict), answer.body
    assert answer.body.get("code") in GRPC_CODES_BY_STATUS[status], answer.body
    message = answer.body.get("message")
    assert isinstance(message, str) and message, answer.body
    for part in message_parts:
        assert part in message, answer.body


class Sandbox:
    """The sandbox marketplace's control endpoints (not routed by Envoy: the test's own side)."""

    def __init__(self, stack: Stack) -> None:
        self._client = httpx.Client(base_url=stack.env["WALMART_API_BASE_URL"], timeout=30)

    def set_faults(self, account: str, **switches: Any) -> None:
        answer = self._client.post("/_sandbox/faults", json={"account": account, **switches})
        assert answer.status_code == 200, answer.text

    def calls(self, account: str) -> dict[str, int]:
        answer = self._client.get("/_sandbox/stats", params={"account": account})
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["calls"])


def expected_amazon_product(listing: AmazonListing) -> dict[str, Any]:
    """What the contract's "What a sync writes" table makes of an Amazon listing."""
    quantity = listing.fulfillable_quantity if listing.is_fba else listing.quantity
    return {
        "sku": listing.sku,
        "marketplace": "amazon",
        "title": listing.title,
        "description": listing.description,
        "brand": listing.brand or "",
        "category": listing.category or "",
        "price": listing.price,
        "currency": "USD",
        "inventory_quantity": quantity,
        "image_url": listing.main_image or "",
        "asin": listing.asin,
        "listings": [
            {
                "marketplace": "amazon",
                "price": listing.price,
                "currency": "USD",
                "inventory_quantity": quantity,
                "external_id": listing.asin,
                "status": listing.status,
            }
        ],
    }


def expected_walmart_product(item: WalmartItem) -> dict[str, Any]:
    """What the contract's "What a sync writes" table makes of a Walmart item."""
    price = f"{item.price:.2f}"
    return {
        "sku": item.sku,
        "marketplace": "walmart",
        "title": item.product_name,
        "description": "",
        "brand": "",
        "category": item.product_type,
        "price": price,
        "currency": item.currency,
        "inventory_quantity": item.available_to_sell,
        "image_url": "",
        "asin": "",
        "listings": [
            {
                "marketplace": "walmart",
                "price": price,
                "currency": item.currency,
                "inventory_quantity": item.available_to_sell,
                "external_id": item.wpid,
                "status": item.published_status,
            }
        ],
    }


def as_stored(product: dict[str, Any]) -> dict[str, Any]:
    """A product as the API answers it, without the timestamps it adds."""
    stamps = ("created_at", "updated_at", "synced_at")
    trimmed = {key: value for key, value in product.items() if key not in stamps}
    trimmed["listings"] = [
        {key: value for key, value in listing.items() if key != "synced_at"}
        for listing in product.get("listings", [])
    ]
    return trimmed
