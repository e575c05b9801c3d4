"""The products contract through Envoy: codes and bodies of each endpoint, roles, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.integration.catalog_support import (
    Org,
    assert_error,
    batch,
    new_org,
    product_body,
    put,
    timestamp,
    token_with_role,
    watch_server_errors,
)
from tests.integration.conftest import Api


@pytest.fixture(autouse=True)
def _no_server_errors(api: Api) -> Iterator[None]:
    yield from watch_server_errors(api)


@pytest.fixture
def org(api: Api) -> Org:
    return new_org(api)


def test_put_answers_the_stored_product(api: Api, org: Org) -> None:
    answer = put(api, org, "MUG-1", product_body(price="19.9", asin="B000TEST"))
    assert answer.status == 200, answer.body
    product = answer.body
    assert {key: product[key] for key in product_body()} == product_body(price="19.90")
    assert product["sku"] == "MUG-1"
    assert product["marketplace"] == ""
    assert product["asin"] == "B000TEST"
    assert product["listings"] == []
    assert timestamp(product["created_at"]) == timestamp(product["updated_at"])
    assert api.call("GET", "/api/products/MUG-1", token=org.token).body == product


def test_a_second_put_keeps_created_at_and_moves_updated_at(api: Api, org: Org) -> None:
    first = put(api, org, "MUG-1").body
    second = put(api, org, "MUG-1", product_body(title="Big mug", price="21.00"))
    assert second.status == 200, second.body
    assert second.body["title"] == "Big mug"
    assert second.body["price"] == "21.00"
    assert second.body["created_at"] == first["created_at"]
    assert timestamp(second.body["updated_at"]) > timestamp(first["updated_at"])


def test_a_product_without_price_or_text_is_stored(api: Api, org: Org) -> None:
    answer = put(api, org, "BARE", {})
    assert answer.status == 200, answer.body
    assert (answer.body["price"], answer.body["currency"], answer.body["title"]) == ("", "", "")
    assert answer.body["inventory_quantity"] == 0


def test_get_of_an_absent_product_is_404(api: Api, org: Org) -> None:
    assert_error(api.call("GET", "/api/products/NOPE", token=org.token), 404, "NOPE")


def test_delete_removes_the_product(api: Api, org: Org) -> None:
    put(api, org, "MUG-1")
    answer = api.call("DELETE", "/api/products/MUG-1", token=org.token)
    assert (answer.status, answer.body) == (200, {})
    assert_error(api.call("GET", "/api/products/MUG-1", token=org.token), 404, "MUG-1")
    assert_error(api.call("GET", "/api/products/MUG-1/price-history", token=org.token), 404)
    assert_error(api.call("DELETE", "/api/products/MUG-1", token=org.token), 404, "MUG-1")


def test_deleting_an_absent_product_is_404(api: Api, org: Org) -> None:
    assert_error(api.call("DELETE", "/api/products/NEVER", token=org.token), 404, "NEVER")


@pytest.mark.parametrize(
    ("sku", "fields", "named"),
    [
        ("BAD%23SKU", {}, "sku"),
        ("S" * 101, {}, "sku"),
        ("MUG", {"price": "19.999"}, "price"),
        ("MUG", {"price": "-1"}, "price"),
        ("MUG", {"price": "abc"}, "price"),
        ("MUG", {"price": "1e3"}, "price"),
        ("MUG", {"currency": "usd"}, "currency"),
        ("MUG", {"currency": "US"}, "currency"),
        ("MUG", {"inventory_quantity": -1}, "inventory_quantity"),
        ("MUG", {"title": "t" * 2001}, "title"),
    ],
)
def test_put_refuses_invalid_fields_naming_them(
    api: Api, org: Org, sku: str, fields: dict[str, object], named: str
) -> None:
    answer = put(api, org, sku, {**product_body(), **fields})
    assert_error(answer, 400, named)
    assert api.call("GET", "/api/products", token=org.token).body["products"] == []


def test_a_sku_of_100_characters_is_accepted(api: Api, org: Org) -> None:
    sku = "S" * 100
    assert put(api, org, sku).status == 200
    assert api.call("GET", f"/api/products/{sku}", token=org.token).body["sku"] == sku


def test_a_sku_with_spaces_and_slashes_round_trips(api: Api, org: Org) -> None:
    sku = "MUG RED-10%"
    assert put(api, org, "MUG%20RED-10%25").status == 200
    assert api.call("GET", "/api/products/MUG%20RED-10%25", token=org.token).body["sku"] == sku


@pytest.mark.parametrize(
    ("page_size", "expected"),
    [(None, 50), (1, 1), (100, 100)],
)
def test_page_size_defaults_to_50_when_absent_and_takes_1_to_100(
    api: Api, page_size: int | None, expected: int
) -> None:
    org = listing_org(api)
    params = {} if page_size is None else {"page_size": page_size}
    answer = api.call("GET", "/api/products", token=org.token, params=params)
    assert answer.status == 200, answer.body
    assert len(answer.body["products"]) == expected
    assert answer.body["next_page_token"] != ""


@pytest.mark.parametrize("page_size", ["0", "101", "-1", "abc"])
def test_page_size_out_of_range_is_400(api: Api, org: Org, page_size: str) -> None:
    answer = api.call("GET", "/api/products", token=org.token, params={"page_size": page_size})
    assert_error(answer, 400)
    if page_size != "abc":
        assert "page_size" in answer.body["message"]


def test_an_unknown_marketplace_filter_is_400(api: Api, org: Org) -> None:
    answer = api.call("GET", "/api/products", token=org.token, params={"marketplace": "ebay"})
    assert_error(answer, 400, "marketplace")


_LISTING_ORG: list[Org] = []


def listing_org(api: Api) -> Org:
    """An organization holding 120 products, made once for the page size tests."""
    if not _LISTING_ORG:
        org = new_org(api)
        products = [{"sku": f"SKU-{n:03d}", **product_body()} for n in range(120)]
        assert batch(api, org.token, products).body["upserted"] == 120
        _LISTING_ORG.append(org)
    return _LISTING_ORG[0]


def test_batch_upsert_stores_valid_items_and_reports_invalid_ones(api: Api, org: Org) -> None:
    answer = batch(
        api,
        org.token,
        [
            {"sku": "GOOD-1", **product_body()},
            {"sku": "BAD#1", **product_body()},
            {"sku": "GOOD-2", **product_body(price="5")},
            {"sku": "CHEAP", **product_body(price="1.001")},
            {"sku": "LOWER", **product_body(currency="usd")},
            {"sku": "", **product_body()},
        ],
    )
    assert answer.status == 200, answer.body
    assert answer.body["upserted"] == 2
    assert answer.body["unchanged"] == 0
    failed = {item["sku"]: item["message"] for item in answer.body["failed"]}
    assert failed.keys() == {"BAD#1", "CHEAP", "LOWER", ""}
    assert "sku" in failed["BAD#1"]
    assert "price" in failed["CHEAP"]
    assert "currency" in failed["LOWER"]
    assert "sku" in failed[""]
    assert api.call("GET", "/api/products/GOOD-2", token=org.token).body["price"] == "5.00"
    assert_error(api.call("GET", "/api/products/CHEAP", token=org.token), 404)


def test_a_batch_of_1000_with_duplicate_skus_counts_each_sku_once(api: Api, org: Org) -> None:
    products = [{"sku": f"SKU-{n:04d}", **product_body(title="first")} for n in range(900)]
    products += [{"sku": f"SKU-{n:04d}", **product_body(title="last")} for n in range(0, 200, 2)]
    answer = batch(api, org.token, products)
    assert answer.status == 200, answer.body
    assert (answer.body["upserted"], answer.body["failed"]) == (900, [])
    assert api.call("GET", "/api/products/SKU-0002", token=org.token).body["title"] == "last"
    assert api.call("GET", "/api/products/SKU-0003", token=org.token).body["title"] == "first"
    history = api.call("GET", "/api/products/SKU-0002/price-history", token=org.token).body
    assert len(history["points"]) == 1


def test_a_batch_of_1001_is_refused(api: Api, org: Org) -> None:
    products = [{"sku": f"SKU-{n:04d}", **product_body()} for n in range(1001)]
    assert_error(batch(api, org.token, products), 400, "1000")
    assert api.call("GET", "/api/products", token=org.token).body["products"] == []


def test_an_identical_batch_again_is_all_unchanged(api: Api, org: Org) -> None:
    products = [{"sku": f"SKU-{n:03d}", **product_body()} for n in range(60)]
    assert batch(api, org.token, products).body["upserted"] == 60
    before = api.call("GET", "/api/products/SKU-007", token=org.token).body
    again = batch(api, org.token, products)
    assert again.status == 200, again.body
    assert (again.body["upserted"], again.body["unchanged"], again.body["failed"]) == (60, 60, [])
    assert api.call("GET", "/api/products/SKU-007", token=org.token).body == before
    changed = [*products[:59], {**products[59], "inventory_quantity": 1}]
    third = batch(api, org.token, changed)
    assert (third.body["upserted"], third.body["unchanged"]) == (60, 59)


def test_price_history_has_a_point_per_price_change_oldest_first(api: Api, org: Org) -> None:
    prices = ["10.00", "10.00", "12.50", "12.5", "9.99", "10.00"]
    for n, price in enumerate(prices):
        put(api, org, "MUG-1", product_body(price=price, inventory_quantity=n))
    batch(api, org.token, [{"sku": "MUG-1", **product_body(price="10", title="same price")}])
    answer = api.call("GET", "/api/products/MUG-1/price-history", token=org.token)
    assert answer.status == 200, answer.body
    points = answer.body["points"]
    assert [(p["price"], p["currency"]) for p in points] == [
        ("10.00", "USD"),
        ("12.50", "USD"),
        ("9.99", "USD"),
        ("10.00", "USD"),
    ]
    moments = [timestamp(p["recorded_at"]) for p in points]
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments)


def test_a_currency_change_is_a_price_change(api: Api, org: Org) -> None:
    put(api, org, "MUG-1", product_body(price="10.00"))
    put(api, org, "MUG-1", product_body(price="10.00", currency="EUR"))
    points = api.call("GET", "/api/products/MUG-1/price-history", token=org.token).body["points"]
    assert [(p["price"], p["currency"]) for p in points] == [("10.00", "USD"), ("10.00", "EUR")]


def test_price_history_of_an_absent_product_is_404(api: Api, org: Org) -> None:
    answer = api.call("GET", "/api/products/NOPE/price-history", token=org.token)
    assert_error(answer, 404, "NOPE")


def test_a_viewer_reads_but_cannot_write(api: Api, org: Org) -> None:
    put(api, org, "MUG-1")
    viewer = token_with_role(api, org, "viewer")
    assert api.call("GET", "/api/products/MUG-1", token=viewer).status == 200
    assert [p["sku"] for p in api.call("GET", "/api/products", token=viewer).body["products"]] == [
        "MUG-1"
    ]
    assert api.call("GET", "/api/products/MUG-1/price-history", token=viewer).status == 200
    for method, path, body in [
        ("PUT", "/api/products/MUG-2", product_body()),
        ("PUT", "/api/products/MUG-1", product_body(price="1.00")),
        ("DELETE", "/api/products/MUG-1", None),
        ("POST", "/api/products:batchUpsert", {"products": [{"sku": "MUG-3"}]}),
    ]:
        assert_error(api.call(method, path, body, token=viewer), 403)
    product = api.call("GET", "/api/products/MUG-1", token=org.token).body
    assert product["price"] == "19.99"
    assert_error(api.call("GET", "/api/products/MUG-2", token=org.token), 404)
    assert_error(api.call("GET", "/api/products/MUG-3", token=org.token), 404)


def test_a_member_writes(api: Api, org: Org) -> None:
    member = token_with_role(api, org, "member")
    assert api.call("PUT", "/api/products/MUG-1", product_body(), token=member).status == 200
    assert batch(api, member, [{"sku": "MUG-2", **product_body()}]).body["upserted"] == 1
    assert api.call("DELETE", "/api/products/MUG-2", token=member).status == 200
    assert api.call("GET", "/api/products/MUG-1", token=org.token).body["title"] == "Coffee mug"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/products"),
        ("GET", "/api/products/MUG-1"),
        ("PUT", "/api/products/MUG-1"),
        ("DELETE", "/api/products/MUG-1"),
        ("POST", "/api/products:batchUpsert"),
        ("GET", "/api/products/MUG-1/price-history"),
    ],
)
def test_every_products_path_needs_a_token(api: Api, method: str, path: str) -> None:
    body: dict[str, str] | None = {} if method in ("PUT", "POST") else None
    assert_error(api.call(method, path, body), 401)
    assert_error(api.call(method, path, body, token="not-a-token"), 401)


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("PUT", "/api/products/MUG-1", b'{"title": "Mug"'),
        ("PUT", "/api/products/MUG-1", b'{"price": 19.99}'),
        ("PUT", "/api/products/MUG-1", b'{"inventory_quantity": "many"}'),
        ("PUT", "/api/products/MUG-1", b'{"inventory_quantity": 1.5}'),
        ("PUT", "/api/products/MUG-1", b'{"inventory_quantity": 99999999999}'),
        ("PUT", "/api/products/MUG-1", b'{"title": ["Mug"]}'),
        ("PUT", "/api/products/MUG-1", b"[]"),
        ("PUT", "/api/products/MUG-1", b"not json"),
        ("POST", "/api/products:batchUpsert", b'{"products": [{"sku": 5}]}'),
        ("POST", "/api/products:batchUpsert", b'{"products": ['),
        ("POST", "/api/products:batchUpsert", b'{"products": [{"created_at": "yesterday"}]}'),
    ],
)
def test_malformed_json_and_wrong_types_are_400_json(
    api: Api, org: Org, method: str, path: str, content: bytes
) -> None:
    answer = api.call(method, path, token=org.token, content=content)
    assert_error(answer, 400)
    assert api.call("GET", "/api/products", token=org.token).body["products"] == []


def test_an_empty_batch_stores_nothing(api: Api, org: Org) -> None:
    answer = batch(api, org.token, [])
    assert answer.status == 200, answer.body
    assert (answer.body["upserted"], answer.body["failed"]) == (0, [])


def test_the_sku_in_the_path_wins_over_one_in_the_body(api: Api, org: Org) -> None:
    answer = put(api, org, "MUG-1", product_body(sku="OTHER"))
    assert answer.status == 200, answer.body
    assert answer.body["sku"] == "MUG-1"
    assert_error(api.call("GET", "/api/products/OTHER", token=org.token), 404)


def test_prices_keep_every_digit(api: Api, org: Org) -> None:
    price = "1" * 36 + ".25"
    answer = put(api, org, "BIG", product_body(price=price))
    assert answer.status == 200, answer.body
    assert Decimal(answer.body["price"]) == Decimal(price)
    assert api.call("GET", "/api/products/BIG", token=org.token).body["price"] == price


def test_a_duplicate_sku_is_judged_by_its_last_occurrence(api: Api, org: Org) -> None:
    answer = batch(
        api,
        org.token,
        [
            {"sku": "FIXED", **product_body(price="abc")},
            {"sku": "FIXED", **product_body(price="1.00")},
            {"sku": "BROKEN", **product_body(title="first", price="1.00")},
            {"sku": "BROKEN", **product_body(title="last", price="abc")},
        ],
    )
    assert answer.status == 200, answer.body
    assert answer.body["upserted"] == 1
    assert [failed["sku"] for failed in answer.body["failed"]] == ["BROKEN"]
    assert "price" in answer.body["failed"][0]["message"]
    assert api.call("GET", "/api/products/FIXED", token=org.token).body["price"] == "1.00"
    assert_error(api.call("GET", "/api/products/BROKEN", token=org.token), 404)


@pytest.mark.parametrize(("path_sku", "sku"), [("caf%C3%A9", "café"), ("A%2FB", "A/B")])
def test_unusual_skus_round_trip(api: Api, org: Org, path_sku: str, sku: str) -> None:
    answer = put(api, org, path_sku)
    assert answer.status == 200, answer.body
    assert answer.body["sku"] == sku
    assert api.call("GET", f"/api/products/{path_sku}", token=org.token).body["sku"] == sku


def test_a_request_too_large_for_the_gateway_is_refused_in_json(api: Api, org: Org) -> None:
    products = [{"sku": f"SKU-{n}", "description": "x" * 50_000} for n in range(200)]
    answer = batch(api, org.token, products)
    assert_error(answer, 413)
