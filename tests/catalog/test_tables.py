"""Creating the products table (moto and dynalite)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.catalog import tables
from services.catalog.tables import GSI1, ensure_table


def test_ensure_table_creates_the_table_with_gsi1_once(client: Any) -> None:
    name = f"products-{uuid.uuid4().hex[:12]}"
    ensure_table(client, name)
    ensure_table(client, name)  # a second run changes nothing
    table = client.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["PK", "SK"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == GSI1
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["organizationId", "created_at"]
    types = {item["AttributeName"]: item["AttributeType"] for item in table["AttributeDefinitions"]}
    assert types["organizationId"] == "N"


def test_a_table_without_gsi1_is_reported(client: Any) -> None:
    name = f"bare-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(RuntimeError, match=GSI1):
        ensure_table(client, name)


def test_main_creates_the_table_named_in_the_environment(
    client: Any, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"products-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PRODUCTS_TABLE_NAME", name)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
    tables.main()
    assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
