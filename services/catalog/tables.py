"""The products table: the definition a platform team deploys, and a command that creates it.

`python -m services.catalog.tables` creates PRODUCTS_TABLE_NAME in AWS_REGION (at
DYNAMODB_ENDPOINT_URL when set, else real AWS) unless it exists, waits until it is ACTIVE, and
protects it (new or existing): point-in-time recovery (35 days of restorable history) and
deletion protection; a new table is encrypted with the KMS key PRODUCTS_TABLE_KMS_KEY_ID when
set, else with the key DynamoDB owns. The catalog's own start-up creation
(CREATE_PRODUCTS_TABLE, the local stack) makes a plain table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.catalog.dynamo import error_code, make_dynamodb_client

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client.
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "GSI1"
# Short polls: a local server is ACTIVE within milliseconds, AWS within a minute or two.
_WAIT = {"Delay": 0.1, "MaxAttempts": 3000}

log = logging.getLogger(__name__)

TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
        {"AttributeName": "organizationId", "AttributeType": "N"},
        {"AttributeName": "created_at", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            # Sparse: only product items carry organizationId and created_at.
            "IndexName": GSI1,
            "KeySchema": [
                {"AttributeName": "organizationId", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            # Keys only: a change to a product's price or inventory leaves its entry as it
            # was, so it costs no index write unit (with every attribute projected, each change
            # cost its entry a unit too). A list page reads its products by key instead, half
            # a read unit each: reads cost a fifth of writes, and a catalogue changes far more
            # often than it is listed in full. Tables made with the earlier ALL projection keep
            # working (list pages then use what the index holds); DynamoDB cannot change an
            # index's projection, so moving one takes a new table.
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


@dataclass(frozen=True)
class Protection:
    """What the production table gets beyond its definition."""

    # SSE-KMS with this key (id, ARN or alias) for a new table; None: the key DynamoDB owns.
    kms_key_id: str | None = None

    def create_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"DeletionProtectionEnabled": True}
        if self.kms_key_id:
            arguments["SSESpecification"] = {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": self.kms_key_id,
            }
        return arguments


def ensure_table(client: DynamoDBClient, name: str, protection: Protection | None = None) -> None:
    """Create the table with GSI1 unless it exists; return once it is ACTIVE (and protected)."""
    try:
        description = client.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        _create(client, name, protection.create_arguments() if protection else {})
    else:
        indexes = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
        if GSI1 not in indexes:
            raise RuntimeError(f"table {name} exists without the {GSI1} index the catalog needs")
        if protection and not description.get("DeletionProtectionEnabled"):
            client.update_table(TableName=name, DeletionProtectionEnabled=True)
            log.info("turned on deletion protection of %s", name)
    # botocore sleeps a fractional Delay as given; the stubs say whole seconds.
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_WAIT)  # type: ignore[arg-type]
    if protection:
        # Idempotent, and only possible once the table is ACTIVE.
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _create(client: DynamoDBClient, name: str, extra: dict[str, Any]) -> None:
    try:
        client.create_table(TableName=name, **TABLE_DEFINITION, **extra)
        log.info("created DynamoDB table %s", name)
    except ClientError as exc:
        # Another process created it between our describe and create: that is what we wanted.
        if error_code(exc) != "ResourceInUseException":
            raise


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    name = os.environ.get("PRODUCTS_TABLE_NAME", "")
    if not name:
        raise SystemExit("PRODUCTS_TABLE_NAME is not set")
    client = make_dynamodb_client(
        os.environ.get("AWS_REGION", "us-east-1"), os.environ.get("DYNAMODB_ENDPOINT_URL")
    )
    protection = Protection(kms_key_id=os.environ.get("PRODUCTS_TABLE_KMS_KEY_ID") or None)
    ensure_table(client, name, protection)
    log.info("table %s is ACTIVE, with point-in-time recovery and deletion protection", name)


if __name__ == "__main__":
    main()
