"""Creating the products table (moto and dynalite)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from services.catalog import tables
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.tables import GSI1, Protection, ensure_table


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


def _assert_protected(client: Any, name: str) -> None:
    table = client.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["DeletionProtectionEnabled"] is True
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    recovery = backups["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    with pytest.raises(ClientError):
        client.delete_table(TableName=name)


# dynalite knows neither point-in-time recovery nor deletion protection; the Job talks to AWS.
def test_main_creates_the_table_named_in_the_environment_protected(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_dynamodb_client("us-east-1", moto_endpoint)
    name = f"products-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PRODUCTS_TABLE_NAME", name)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", moto_endpoint)
    monkeypatch.delenv("PRODUCTS_TABLE_KMS_KEY_ID", raising=False)
    tables.main()
    _assert_protected(client, name)


def test_an_existing_table_is_protected_and_a_kms_key_encrypts_a_new_one(
    moto_endpoint: str,
) -> None:
    client = make_dynamodb_client("us-east-1", moto_endpoint)
    existing = f"products-{uuid.uuid4().hex[:12]}"
    ensure_table(client, existing)
    ensure_table(client, existing, Protection())
    _assert_protected(client, existing)

    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_endpoint)
    key_arn = kms.create_key(Description="products")["KeyMetadata"]["Arn"]
    encrypted = f"products-{uuid.uuid4().hex[:12]}"
    ensure_table(client, encrypted, Protection(kms_key_id=key_arn))
    _assert_protected(client, encrypted)
    sse = client.describe_table(TableName=encrypted)["Table"]["SSEDescription"]
    assert (sse["Status"], sse["SSEType"], sse["KMSMasterKeyArn"]) == ("ENABLED", "KMS", key_arn)
