"""SKUs with control characters, through Envoy: refused on every write path, and products stored
with one before the rule deletable with `POST /api/products:batchDelete`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import boto3
import pytest
from mypy_boto3_dynamodb import DynamoDBClient

from dev.stack import Stack
from services.catalog import store as store_module
from services.catalog.domain import ProductInput
from services.catalog.items import product_pk
from services.catalog.store import ProductStore
from tests.integration.catalog_support import (
    Org,
    assert_error,
    batch,
    new_org,
    product_body,
    put,
    synced_product,
    token_with_role,
    watch_server_errors,
    write_synced_batches,
)
from tests.integration.conftest import Api

NUL_SKU = "MUG\x00BLUE"
CONTROL = "sku must not contain control characters"


@pytest.fixture(autouse=True)
def _no_server_errors(api: Api) -> Iterator[None]:
    yield from watch_server_errors(api)


@pytest.fixture
def org(api: Api) -> Org:
    return new_org(api)


def _skus(api: Api, org: Org) -> list[str]:
    answer = api.call("GET", "/api/products", token=org.token, params={"page_size": 100})
    assert answer.status == 200, answer.body
    return sorted(product["sku"] for product in answer.body["products"])


def _dynamodb(stack: Stack) -> tuple[DynamoDBClient, str]:
    """The stack's DynamoDB client and table, as catalog reaches them."""
    client = boto3.client(
        "dynamodb",
        region_name=stack.env["AWS_REGION"],
        endpoint_url=stack.env["DYNAMODB_ENDPOINT_URL"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
    )
    return client, stack.env["PRODUCTS_TABLE_NAME"]


def _store_as_before_the_rule(stack: Stack, org: Org, sku: str) -> None:
    """Write a product straight to DynamoDB as the catalog did before it refused control
    characters: the same items, every other check made."""
    client, table = _dynamodb(stack)
    store = ProductStore(client, table, b"unused: no page is listed here")
    with pytest.MonkeyPatch.context() as old_rules:
        old_rules.setattr(store_module, "validate_product_input", lambda product: None)
        listing = ProductInput(
            sku=sku,
            marketplace="walmart",
            title="Synced with a NUL",
            price=Decimal("9.99"),
            currency="USD",
            external_id="W-NUL",
            listing_status="PUBLISHED",
        )
        store.upsert(int(org.id), listing)
        store.upsert(int(org.id), ProductInput(sku=sku, price=Decimal("8.99"), currency="USD"))


@pytest.mark.parametrize(
    ("encoded", "character"),
    [("%01", "U+0001"), ("%1F", "U+001F"), ("%7F", "U+007F"), ("%C2%85", "U+0085")],
)
def test_a_put_of_a_sku_with_a_control_character_is_refused_naming_the_field(
    api: Api, org: Org, encoded: str, character: str
) -> None:
    answer = put(api, org, f"MUG{encoded}BLUE", product_body())
    assert_error(answer, 400, CONTROL, character)
    assert _skus(api, org) == []


def test_a_put_of_a_sku_with_nul_is_refused(api: Api, org: Org) -> None:
    # Envoy itself refuses a NUL in a path, before any service sees it.
    assert put(api, org, "MUG%00BLUE", product_body()).status == 400
    assert _skus(api, org) == []


def test_a_batch_upsert_refuses_control_characters_item_by_item(api: Api, org: Org) -> None:
    products = [
        {"sku": NUL_SKU, **product_body()},
        {"sku": "MUG\nBLUE", **product_body()},
        {"sku": "MUG\x85BLUE", **product_body()},
        {"sku": "MUG-BLUE", **product_body()},
    ]
    answer = batch(api, org.token, products)
    assert answer.status == 200, answer.body
    assert answer.body["upserted"] == 1
    failed = {item["sku"]: item["message"] for item in answer.body["failed"]}
    assert failed.keys() == {NUL_SKU, "MUG\nBLUE", "MUG\x85BLUE"}
    assert all(message.startswith(CONTROL) for message in failed.values()), failed
    assert "U+0000 at character 4" in failed[NUL_SKU]
    assert _skus(api, org) == ["MUG-BLUE"]


def test_a_synced_sku_with_a_control_character_fails_alone(
    api: Api, stack: Stack, org: Org
) -> None:
    first, second = write_synced_batches(
        stack,
        org,
        "walmart",
        [
            synced_product(NUL_SKU, "Bad", "1.00", "W1"),
            synced_product("GOOD-1", "Good", "1.00", "W2"),
        ],
        [synced_product("GOOD-2", "Good", "1.00", "W3")],
    )
    assert (first.written, first.failed_count, second.written) == (1, 1, 1)
    [refused] = first.failed
    assert refused.sku == NUL_SKU and refused.message.startswith(CONTROL)
    assert _skus(api, org) == ["GOOD-1", "GOOD-2"]


def test_a_product_stored_with_nul_before_the_rule_is_deleted_by_batch_delete(
    api: Api, stack: Stack, org: Org
) -> None:
    _store_as_before_the_rule(stack, org, NUL_SKU)
    put(api, org, "KEEP", product_body())
    assert _skus(api, org) == ["KEEP", NUL_SKU]
    # What the issue found: no URL path can name it.
    for method, path in [
        ("GET", "/api/products/MUG%00BLUE"),
        ("GET", "/api/products/MUG%00BLUE/price-history"),
        ("DELETE", "/api/products/MUG%00BLUE"),
    ]:
        assert api.call(method, path, token=org.token).status == 400

    answer = api.call(
        "POST", "/api/products:batchDelete", {"skus": [NUL_SKU, "NEVER-STORED"]}, token=org.token
    )
    assert answer.status == 200, answer.body
    assert answer.body == {"deleted": 1, "not_found": ["NEVER-STORED"], "failed": []}
    assert _skus(api, org) == ["KEEP"]
    # Its listing and price history went with it.
    client, table = _dynamodb(stack)
    left = client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": product_pk(int(org.id), NUL_SKU)}},
        ConsistentRead=True,
    )
    assert left["Items"] == []
    again = api.call("POST", "/api/products:batchDelete", {"skus": [NUL_SKU]}, token=org.token)
    assert again.body == {"deleted": 0, "not_found": [NUL_SKU], "failed": []}


def test_a_batch_delete_needs_the_member_role_and_at_most_100_skus(api: Api, org: Org) -> None:
    put(api, org, "MUG-1", product_body())
    viewer = token_with_role(api, org, "viewer")
    refused = api.call("POST", "/api/products:batchDelete", {"skus": ["MUG-1"]}, token=viewer)
    assert_error(refused, 403, "member")
    too_many = [f"SKU-{n}" for n in range(101)]
    answer = api.call("POST", "/api/products:batchDelete", {"skus": too_many}, token=org.token)
    assert_error(answer, 400, "skus", "100")
    assert _skus(api, org) == ["MUG-1"]
