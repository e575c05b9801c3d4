"""Listing products through Envoy: pages, the marketplace filter, page tokens, and organizations
that share SKUs but never each other's data."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import pytest

from dev.stack import Stack
from tests.integration.catalog_support import (
    Org,
    all_pages,
    assert_error,
    batch,
    new_org,
    product_body,
    put,
    synced_product,
    timestamp,
    watch_server_errors,
    write_synced,
)
from tests.integration.conftest import Api


@pytest.fixture(autouse=True)
def _no_server_errors(api: Api) -> Iterator[None]:
    yield from watch_server_errors(api)


@pytest.fixture(scope="module")
def catalog(api: Api) -> Org:
    """120 products: three batches of 40 (each batch shares one created_at), then 10 PUTs."""
    org = new_org(api)
    for first in (0, 40, 80):
        products = [{"sku": f"SKU-{n:03d}", **product_body()} for n in range(first, first + 40)]
        answer = batch(api, org.token, products)
        assert (answer.body["upserted"], answer.body["failed"]) == (40, [])
    for n in range(10):
        assert put(api, org, f"LATE-{n}").status == 200
    return org


def test_pages_hold_every_product_once_newest_first(api: Api, catalog: Org) -> None:
    pages = list(all_pages(api, catalog.token, 25))
    assert [len(page) for page in pages] == [25, 25, 25, 25, 25, 5]
    products = [product for page in pages for product in page]
    skus = [product["sku"] for product in products]
    assert len(skus) == len(set(skus)) == 130
    assert skus[:10] == [f"LATE-{n}" for n in reversed(range(10))]
    created = [timestamp(product["created_at"]) for product in products]
    assert created == sorted(created, reverse=True)
    groups = [set(skus[start : start + 40]) for start in (10, 50, 90)]
    assert groups == [{f"SKU-{n:03d}" for n in range(first, first + 40)} for first in (80, 40, 0)]


def test_a_last_page_that_is_exactly_full_has_no_token(api: Api, catalog: Org) -> None:
    pages = list(all_pages(api, catalog.token, 65))
    assert [len(page) for page in pages] == [65, 65]


def test_every_page_size_sees_the_same_order(api: Api, catalog: Org) -> None:
    def order(page_size: int, pages: int | None = None) -> list[str]:
        listed = islice(all_pages(api, catalog.token, page_size), pages)
        return [product["sku"] for page in listed for product in page]

    assert order(1, pages=12) == order(100)[:12]
    assert order(9) == order(100) == order(50)


def test_the_marketplace_filter_lists_products_with_a_listing_there(api: Api, stack: Stack) -> None:
    org = new_org(api)
    amazon = [synced_product(f"AMZ-{n:02d}", "From Amazon", "9.99", f"B{n:04d}") for n in range(30)]
    walmart = [synced_product(f"AMZ-{n:02d}", "From Walmart", "8.99", f"W{n}") for n in range(10)]
    assert write_synced(stack, org, "amazon", amazon[:15], amazon[15:]).written == 30
    assert write_synced(stack, org, "walmart", walmart).written == 10
    by_hand = [{"sku": f"HAND-{n:02d}", **product_body()} for n in range(50)]
    assert batch(api, org.token, by_hand).body["upserted"] == 50

    def listed(page_size: int, **params: str) -> list[str]:
        skus = [p["sku"] for page in all_pages(api, org.token, page_size, **params) for p in page]
        assert len(skus) == len(set(skus))
        return sorted(skus)

    assert listed(7, marketplace="amazon") == [f"AMZ-{n:02d}" for n in range(30)]
    assert listed(3, marketplace="walmart") == [f"AMZ-{n:02d}" for n in range(10)]
    assert listed(1, marketplace="walmart") == [f"AMZ-{n:02d}" for n in range(10)]
    assert len(listed(20)) == 80
    first = api.call(
        "GET", "/api/products", token=org.token, params={"marketplace": "walmart", "page_size": 1}
    ).body["products"][0]
    assert [listing["marketplace"] for listing in first["listings"]] == ["amazon", "walmart"]


def _first_token(api: Api, org: Org, **params: str) -> str:
    answer = api.call("GET", "/api/products", token=org.token, params={"page_size": 5, **params})
    assert answer.status == 200, answer.body
    token = answer.body["next_page_token"]
    assert token
    return str(token)


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_a_page_token_from_another_organization_is_refused(api: Api, catalog: Org) -> None:
    other = new_org(api)
    for n in range(10):
        put(api, other, f"SKU-{n:03d}")
    token = _first_token(api, catalog)
    answer = api.call("GET", "/api/products", token=other.token, params={"page_token": token})
    assert_error(answer, 400, "page_token")
    own = _first_token(api, other)
    answer = api.call("GET", "/api/products", token=catalog.token, params={"page_token": own})
    assert_error(answer, 400, "page_token")


def test_a_page_token_from_another_query_is_refused(api: Api, catalog: Org) -> None:
    token = _first_token(api, catalog)
    answer = api.call(
        "GET",
        "/api/products",
        token=catalog.token,
        params={"page_token": token, "marketplace": "amazon"},
    )
    assert_error(answer, 400, "page_token")


def test_an_altered_page_token_is_refused(api: Api, catalog: Org) -> None:
    token = _first_token(api, catalog)
    body, signature = token.split(".")
    altered = [
        _flip(token, 0),
        _flip(token, len(body) // 2),
        _flip(token, len(body) + 1 + len(signature) // 2),
        _flip(token, len(token) - 1),
        token + "A",
        token[:-1],
        token.replace(".", ".."),
    ]
    for page_token in altered:
        answer = api.call(
            "GET", "/api/products", token=catalog.token, params={"page_token": page_token}
        )
        assert_error(answer, 400, "page_token")
    assert (
        api.call("GET", "/api/products", token=catalog.token, params={"page_token": token}).status
        == 200
    )


@pytest.mark.parametrize(
    "page_token",
    [
        "garbage",
        "eyJza3UiOiJTS1UtMDAwIn0.c2lnbmF0dXJl",
        "e30.",
        ".",
        "%%%.%%%",
        "x" * 5000,
        "eyJza3UiOiJTS1UtMDAwIiwiY3JlYXRlZF9hdCI6IjIwMjAtMDEtMDFUMDA6MDA6MDAuMDAwMDAwWiJ9.AAAA",
    ],
)
def test_a_made_up_page_token_is_refused(api: Api, catalog: Org, page_token: str) -> None:
    answer = api.call(
        "GET", "/api/products", token=catalog.token, params={"page_token": page_token}
    )
    assert_error(answer, 400, "page_token")


def test_organizations_sharing_skus_never_see_each_others_products(api: Api) -> None:
    first, second = new_org(api), new_org(api)
    for org, title, prices in (
        (first, "First's", ["1.00", "2.00"]),
        (second, "Second's", ["5.00"]),
    ):
        for price in prices:
            assert put(api, org, "SHARED", product_body(title=title, price=price)).status == 200
    put(api, first, "ONLY-FIRST")

    def get(org: Org, path: str) -> dict[str, Any]:
        answer = api.call("GET", path, token=org.token)
        assert answer.status == 200, answer.body
        return dict(answer.body)

    assert get(first, "/api/products/SHARED")["title"] == "First's"
    assert get(second, "/api/products/SHARED")["title"] == "Second's"
    assert_error(api.call("GET", "/api/products/ONLY-FIRST", token=second.token), 404)
    assert [p["sku"] for p in get(second, "/api/products")["products"]] == ["SHARED"]
    history = get(second, "/api/products/SHARED/price-history")["points"]
    assert [point["price"] for point in history] == ["5.00"]
    history = get(first, "/api/products/SHARED/price-history")["points"]
    assert [point["price"] for point in history] == ["1.00", "2.00"]
    assert_error(api.call("DELETE", "/api/products/ONLY-FIRST", token=second.token), 404)
    assert api.call("DELETE", "/api/products/SHARED", token=second.token).status == 200
    assert get(first, "/api/products/SHARED")["title"] == "First's"
    assert len(get(first, "/api/products/SHARED/price-history")["points"]) == 2
    assert_error(api.call("GET", "/api/products/SHARED", token=second.token), 404)
    assert sorted(p["sku"] for p in get(first, "/api/products")["products"]) == [
        "ONLY-FIRST",
        "SHARED",
    ]
    batch(api, second.token, [{"sku": "ONLY-FIRST", **product_body(title="Second's own")}])
    assert get(first, "/api/products/ONLY-FIRST")["title"] == "Coffee mug"
