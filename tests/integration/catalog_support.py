"""Helpers shared by the catalog integration tests: organizations, users in roles, products."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
import httpx
from grpc import aio

from dev.stack import Stack
from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.service_auth import ServiceCredential, internal_channel
from tests.integration.conftest import Answer, Api

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Org:
    """An organization with its owner's token."""

    id: str
    token: str
    email: str


def new_org(api: Api) -> Org:
    registered = api.register()
    return Org(
        id=registered["organization"]["id"],
        token=registered["token"],
        email=registered["user"]["email"],
    )


def token_with_role(api: Api, org: Org, role: str) -> str:
    """A token of a new user who accepted an invitation into `org` in `role`, from logging in
    as that user."""
    user = api.register()
    invited = api.call(
        "POST",
        "/api/organization/members",
        {"email": user["user"]["email"], "role": role},
        token=org.token,
    )
    assert invited.status == 200, invited.body
    accepted = api.call(
        "POST",
        f"/api/invitations/{invited.body['invitation']['id']}:accept",
        {},
        token=user["token"],
    )
    assert accepted.status == 200, accepted.body
    login = api.call(
        "POST",
        "/api/auth/login",
        {"email": user["user"]["email"], "password": user["password"], "organization_id": org.id},
    )
    assert login.status == 200, login.body
    assert login.body["organization_id"] == org.id
    return str(login.body["token"])


def product_body(title: str = "Coffee mug", price: str = "19.99", **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "description": "A mug for coffee",
        "brand": "Acme",
        "category": "Kitchen",
        "price": price,
        "currency": "USD",
        "inventory_quantity": 7,
        "image_url": "https://example.com/mug.png",
        **fields,
    }


def put(api: Api, org: Org, sku: str, body: dict[str, Any] | None = None) -> Answer:
    return api.call(
        "PUT", f"/api/products/{sku}", product_body() if body is None else body, token=org.token
    )


def batch(api: Api, token: str, products: list[dict[str, Any]]) -> Answer:
    return api.call("POST", "/api/products:batchUpsert", {"products": products}, token=token)


def assert_error(answer: Answer, status: int, *words: str) -> None:
    """A JSON error with `code` and `message`, the message naming each of `words`."""
    assert answer.status == status, (answer.status, answer.body)
    assert isinstance(answer.body, dict), answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert isinstance(answer.body["code"], int)
    assert isinstance(answer.body["message"], str) and answer.body["message"]
    for word in words:
        assert word in answer.body["message"], (word, answer.body["message"])


def timestamp(text: str) -> datetime:
    assert RFC3339.fullmatch(text), text
    return datetime.fromisoformat(text)


def all_pages(
    api: Api, token: str, page_size: int, **params: str
) -> Iterator[list[dict[str, Any]]]:
    """Each page's products, following next_page_token to the end."""
    page_token = ""
    while True:
        query = {"page_size": page_size, **params}
        if page_token:
            query["page_token"] = page_token
        answer = api.call("GET", "/api/products", token=token, params=query)
        assert answer.status == 200, answer.body
        yield answer.body["products"]
        page_token = answer.body["next_page_token"]
        if not page_token:
            return


def synced_product(
    sku: str, title: str, price: str, external_id: str, status: str = "ACTIVE", **fields: Any
) -> catalog_pb2.Product:
    """One product as a marketplace's sync sends it: the listing's own fields in listings[0]."""
    return catalog_pb2.Product(
        sku=sku,
        title=title,
        price=price,
        currency="USD",
        inventory_quantity=fields.pop("inventory_quantity", 3),
        listings=[catalog_pb2.Listing(external_id=external_id, status=status)],
        **fields,
    )


async def _write_synced(
    open_channel: Callable[[], aio.Channel],
    organization_id: int,
    marketplace: str,
    batches: list[list[catalog_pb2.Product]],
    metadata: tuple[tuple[str, str], ...] = (),
) -> list[catalog_pb2.WriteSyncedProductsResponse]:
    """The catalog's answer to each batch, in order."""

    def requests() -> Iterator[catalog_pb2.WriteSyncedProductsRequest]:
        for number, products in enumerate(batches):
            first = number == 0
            yield catalog_pb2.WriteSyncedProductsRequest(
                organization_id=organization_id if first else 0,
                marketplace=marketplace if first else "",
                products=products,
            )

    async with open_channel() as channel:
        stub = catalog_pb2_grpc.CatalogInternalServiceStub(channel)
        call = stub.WriteSyncedProducts(requests(), metadata=metadata, timeout=30)
        return [answer async for answer in call]


def write_synced_batches(
    stack: Stack, org: Org, marketplace: str, *batches: list[catalog_pb2.Product]
) -> list[catalog_pb2.WriteSyncedProductsResponse]:
    """What the sync service does: stream a marketplace's products in, with its credential;
    the catalog's answer to each batch."""
    credential = ServiceCredential(stack.service_key("sync"), "sync")
    return asyncio.run(
        _write_synced(
            lambda: internal_channel(stack.env["CATALOG_ADDRESS"], credential),
            int(org.id),
            marketplace,
            list(batches),
        )
    )


def write_synced(
    stack: Stack, org: Org, marketplace: str, *batches: list[catalog_pb2.Product]
) -> catalog_pb2.WriteSyncedProductsResponse:
    """What the sync service does, answered with the counts of every batch together."""
    total = catalog_pb2.WriteSyncedProductsResponse()
    for answer in write_synced_batches(stack, org, marketplace, *batches):
        total.written += answer.written
        total.unchanged += answer.unchanged
        total.failed.extend(answer.failed)
        total.failed_count += answer.failed_count
    return total


def write_synced_status(
    address: str, org: Org, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    """The status of a WriteSyncedProducts call on a plain channel carrying only `metadata`.

    The batch goes out a moment after the call opens: a refusal then arrives before the client
    writes, as it would for a real intruder, instead of racing the write (which grpc may report
    as INTERNAL, the stream being reset under it)."""
    product = synced_product("INTRUDER", "Not mine", "1.00", "B0")

    async def attempt() -> None:
        async def requests() -> AsyncIterator[catalog_pb2.WriteSyncedProductsRequest]:
            await asyncio.sleep(0.3)
            yield catalog_pb2.WriteSyncedProductsRequest(
                organization_id=int(org.id), marketplace="amazon", products=[product]
            )

        async with aio.insecure_channel(address) as channel:
            stub = catalog_pb2_grpc.CatalogInternalServiceStub(channel)
            call = stub.WriteSyncedProducts(requests(), metadata=metadata, timeout=30)
            async for _ in call:
                pass

    try:
        asyncio.run(attempt())
    except aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def watch_server_errors(api: Api) -> Iterator[None]:
    """For an autouse fixture: fail the test if any request it made through `api` got a 5xx."""
    server_errors: list[str] = []

    def record(response: httpx.Response) -> None:
        if response.status_code >= 500:
            request = response.request
            server_errors.append(f"{request.method} {request.url.path}: {response.status_code}")

    api.client.event_hooks["response"].append(record)
    try:
        yield
    finally:
        api.client.event_hooks["response"].remove(record)
    assert server_errors == []
