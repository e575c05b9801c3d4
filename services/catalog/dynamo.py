"""The DynamoDB client, error translation and the limits DynamoDB enforces but local servers don't.

One client per process: boto3 clients are thread-safe and hold the connection pool, so the
servicer's worker threads share it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from marketsync.errors import ResourceExhausted, Unavailable

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client.
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_ITEM_BYTES = 400 * 1024
MAX_BATCH_WRITE_ITEMS = 25
MAX_BATCH_GET_KEYS = 100
# botocore's own attempts per call; our batch loops retry unprocessed items on top of these.
CLIENT_MAX_ATTEMPTS = 5
CLIENT_POOL_CONNECTIONS = 64

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
CONDITION_FAILED = "ConditionalCheckFailedException"


def make_dynamodb_client(region: str, endpoint_url: str | None) -> DynamoDBClient:
    """A DynamoDB client for AWS (endpoint_url None) or a local server at endpoint_url."""
    config = Config(
        retries={"mode": "adaptive", "max_attempts": CLIENT_MAX_ATTEMPTS},
        max_pool_connections=CLIENT_POOL_CONNECTIONS,
        connect_timeout=5,
        read_timeout=10,
    )
    return boto3.client(
        "dynamodb", region_name=region, endpoint_url=endpoint_url or None, config=config
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_retryable(exc: Exception) -> bool:
    """Throttling, server faults and network trouble: worth another try after a pause."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in THROTTLING_CODES or status >= 500
    return False


def translate(exc: Exception) -> Exception:
    """The domain error a client sees for a failed DynamoDB call."""
    if isinstance(exc, ClientError) and error_code(exc) in THROTTLING_CODES:
        return ResourceExhausted("the product store is busy; retry in a few seconds")
    return Unavailable("the product store is unavailable; retry later")


@contextmanager
def dynamodb_errors() -> Iterator[None]:
    """Turn botocore failures into domain errors, so none reaches a client raw."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc) from exc


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB counts it (attribute names plus values), in bytes: what its
    capacity units and the 400 KB limit are measured by."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def attribute_size(value: Mapping[str, Any]) -> int:
    """A value's size as DynamoDB counts it, whatever its type."""
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        significant = str(content).lstrip("-").replace(".", "").strip("0")
        return (len(significant) + 1) // 2 + 1
    if kind == "B":
        return len(content) if isinstance(content, bytes) else len(base64.b64decode(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: member}) for member in content)
    # Lists and maps: 3 bytes, and 1 for each element.
    if kind == "L":
        return 3 + sum(1 + attribute_size(member) for member in content)
    if kind == "M":
        return 3 + len(content) + item_size(content)
    raise ValueError(f"unknown DynamoDB type {kind}")
