"""Client settings, error translation and item sizes (no database)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from marketsync.errors import ResourceExhausted, Unavailable
from services.catalog.dynamo import dynamodb_errors, item_size, make_dynamodb_client


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        # botocore-stubs want every ResponseMetadata key; a throttled answer carries the status.
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        "PutItem",
    )


def test_the_client_retries_adaptively_with_a_connection_pool() -> None:
    client = make_dynamodb_client("eu-west-1", None)
    config = client.meta.config
    # botocore-stubs leave out the options Config sets from its defaults.
    assert config.retries["mode"] == "adaptive"  # type: ignore[attr-defined]
    assert config.max_pool_connections >= 10  # type: ignore[attr-defined]
    assert client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    local = make_dynamodb_client("us-east-1", "http://127.0.0.1:1")
    assert local.meta.endpoint_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("ProvisionedThroughputExceededException", 400), ResourceExhausted),
        (_client_error("ThrottlingException", 400), ResourceExhausted),
        (_client_error("ResourceNotFoundException", 400), Unavailable),
        (_client_error("InternalServerError", 500), Unavailable),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unavailable),
    ],
)
def test_dynamodb_failures_become_domain_errors(error: Exception, expected: type) -> None:
    with pytest.raises(expected), dynamodb_errors():
        raise error


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"n": {"N": "19.99"}}) == 1 + 3
    assert item_size({"n": {"N": "-0.0012300"}}) == 1 + 3
    assert item_size({"big": {"S": "x" * 400_000}}) == 400_003
    # A map: 3 bytes, 1 per element, and its elements' names and values.
    assert item_size({"m": {"M": {"a": {"S": "xy"}, "n": {"N": "19.99"}}}}) == 1 + 3 + 2 + 3 + 4


@pytest.mark.parametrize(
    "item",
    [
        {"a": {"S": "x"}},
        {"é": {"S": 'héllo 😀 \u2028 \x00 " \\'}},
        {"n": {"N": "-0.0012300"}, "m": {"N": "1" * 38}},
        {"b": {"B": "aGVsbG8="}, "t": {"BOOL": True}, "z": {"NULL": True}},
        {"l": {"L": []}, "m": {"M": {}}},
        {"l": {"L": [{"S": "a"}, {"N": "1"}, {"L": [{"S": "😀"}]}]}},
        {"m": {"M": {"é": {"S": "b"}, "k": {"M": {"x": {"N": "2"}}}}}},
        {"ss": {"SS": ["a", "é"]}, "ns": {"NS": ["1", "22"]}, "bs": {"BS": ["aGk="]}},
    ],
)
def test_an_items_json_is_never_shorter_than_its_dynamodb_size(item: dict[str, Any]) -> None:
    """What lets the store skip counting an item's size when its JSON fits the limit."""
    assert len(json.dumps(item)) >= item_size(item)
