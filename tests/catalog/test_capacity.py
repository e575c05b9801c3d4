"""Capacity units as DynamoDB bills them, counted from item sizes where the server does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from prometheus_client import REGISTRY

from services.catalog.capacity import (
    Units,
    estimated_units,
    indexes_of,
    meter_dynamodb,
    put_units,
    read_units_of,
    reported_units,
    tally_units,
    write_units,
    write_units_of,
)
from services.catalog.dynamo import item_size, make_dynamodb_client
from services.catalog.tables import TABLE_DEFINITION

TABLE = "products"
# The products table's keys with one sparse index projecting every attribute, one keys only.
DEFINITION: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "ALL",
            "KeySchema": [{"AttributeName": "org", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "KEYS",
            "KeySchema": [{"AttributeName": "created", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    ],
}
INDEXES = indexes_of(DEFINITION)


def item(pad: int = 0, **extra: str) -> dict[str, Any]:
    """An item of exactly 8 + pad bytes, besides `extra`: PK "p" (3), SK "s" (3), x (1 + pad)."""
    return {
        "PK": {"S": "p"},
        "SK": {"S": "s"},
        "x": {"S": "y" * pad},
        **{name: {"S": value} for name, value in extra.items()},
    }


def test_sizes_count_names_and_values_as_dynamodb_does() -> None:
    assert item_size(item(pad=10)) == 2 + 1 + 2 + 1 + 1 + 10
    assert item_size({"n": {"N": "123.45"}}) == 1 + 4  # 5 significant digits: 3 bytes + 1
    assert item_size({"b": {"BOOL": True}, "m": {"M": {"k": {"S": "v"}}}}) == 1 + 1 + 1 + 3 + 1 + 2


def test_a_write_unit_per_started_kilobyte_a_read_unit_per_started_4_kb() -> None:
    assert [write_units_of(size) for size in (0, 1, 1024, 1025, 4096)] == [1, 1, 1, 2, 4]
    assert [read_units_of(size, True) for size in (0, 4096, 4097)] == [1, 1, 2]
    assert [read_units_of(size, False) for size in (0, 4096, 4097)] == [0.5, 0.5, 1]


def test_a_put_costs_its_item_and_an_entry_in_each_index_it_lands_in() -> None:
    assert put_units(item(), INDEXES) == 1  # in neither sparse index
    assert put_units(item(org="1"), INDEXES) == 2  # and in ALL, whole
    assert put_units(item(org="1", created="t"), INDEXES) == 3  # and its keys in KEYS
    big = item(pad=1500, org="1", created="t")
    # 1.5 KB: two units for the item and two for its whole copy; its keys alone fit in one.
    assert put_units(big, INDEXES) == 2 + 2 + 1


def test_write_requests_cost_what_their_puts_and_deletes_do() -> None:
    delete = {"DeleteRequest": {"Key": {"PK": {"S": "p"}, "SK": {"S": "s"}}}}
    batch = {
        "RequestItems": {TABLE: [{"PutRequest": {"Item": item(org="1")}}, delete]},
    }
    assert write_units([("BatchWriteItem", batch), ("PutItem", {"Item": item()})], INDEXES) == 4


def test_a_local_servers_answers_are_counted_from_item_sizes() -> None:
    put = {"Item": item(pad=2000, org="1")}
    assert estimated_units("PutItem", put, {}, INDEXES) == Units(write=4.0)
    refused = {"Error": {"Code": "ConditionalCheckFailedException"}}
    assert estimated_units("PutItem", put, refused, INDEXES) == Units(write=1.0)
    found = {"Item": item(pad=5000)}
    assert estimated_units("GetItem", {"ConsistentRead": True}, found, INDEXES) == Units(read=2.0)
    assert estimated_units("GetItem", {}, {}, INDEXES) == Units(read=0.5)


def test_a_query_sums_its_items_before_rounding_and_an_index_reads_eventually() -> None:
    # 4.3 KB in all: two units, where four items read one by one would cost four.
    answer = {"Items": [item(pad=1100) for _ in range(4)]}
    consistent = {"ConsistentRead": True}
    assert estimated_units("Query", consistent, answer, INDEXES) == Units(read=2.0)
    on_index = {"IndexName": "ALL", "ConsistentRead": True}
    assert estimated_units("Query", on_index, answer, INDEXES) == Units(read=1.0)


def test_a_batch_read_counts_each_key_and_leaves_out_unprocessed_ones() -> None:
    keys = [{"PK": {"S": f"p{n}"}, "SK": {"S": "s"}} for n in range(4)]
    params = {"RequestItems": {TABLE: {"Keys": keys, "ConsistentRead": True}}}
    answer = {
        "Responses": {TABLE: [item(pad=5000)]},  # 2 units
        "UnprocessedKeys": {TABLE: {"Keys": keys[3:]}},
    }
    # The item found, and two keys not found at a unit each; the unprocessed one is retried.
    assert estimated_units("BatchGetItem", params, answer, INDEXES) == Units(read=4.0)


def test_a_batch_write_counts_only_what_was_processed() -> None:
    first, second = {"PutRequest": {"Item": item(org="1")}}, {"PutRequest": {"Item": item()}}
    params = {"RequestItems": {TABLE: [first, second]}}
    answer = {"UnprocessedItems": {TABLE: [first]}}
    assert estimated_units("BatchWriteItem", params, answer, INDEXES) == Units(write=1.0)


@pytest.mark.parametrize(
    ("operation", "consumed", "expected"),
    [
        ("PutItem", {"CapacityUnits": 3.0}, Units(write=3.0)),
        ("Query", {"CapacityUnits": 0.5}, Units(read=0.5)),
        (
            "BatchWriteItem",
            [{"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}, {"WriteCapacityUnits": 2.0}],
            Units(write=6.0),
        ),
        ("GetItem", {"ReadCapacityUnits": 1.0, "CapacityUnits": 1.0}, Units(read=1.0)),
    ],
)
def test_dynamodbs_own_figures_are_taken_as_reported(
    operation: str, consumed: Any, expected: Units
) -> None:
    assert reported_units(operation, {"ConsumedCapacity": consumed}) == expected


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_metered_client_counts_its_calls_and_units_and_tallies_them_where_they_are_made(
    endpoint: str, table: str
) -> None:
    client = make_dynamodb_client("us-east-1", endpoint)
    meter_dynamodb(client, indexes_of(TABLE_DEFINITION), billed=False)
    product = {
        "PK": {"S": "ORG#1#PRODUCT#a"},
        "SK": {"S": "METADATA"},
        "organizationId": {"N": "1"},
        "created_at": {"S": "2026-01-01T00:00:00Z"},
        "title": {"S": "t" * 1500},
    }
    ok = metric("marketsync_dynamodb_requests_total", operation="PutItem", outcome="ok")
    written = metric("marketsync_dynamodb_capacity_units_total", operation="PutItem", kind="write")

    async def put_in_a_worker_thread() -> Units:
        with tally_units() as tally:
            await asyncio.to_thread(client.put_item, TableName=table, Item=product)
        return tally.units

    # 1.5 KB: two units for the item, one for its GSI1 entry (keys only).
    assert asyncio.run(put_in_a_worker_thread()) == Units(write=3.0)
    assert metric("marketsync_dynamodb_requests_total", operation="PutItem", outcome="ok") == ok + 1
    units = metric("marketsync_dynamodb_capacity_units_total", operation="PutItem", kind="write")
    assert units == written + 3
    refused = metric(
        "marketsync_dynamodb_requests_total",
        operation="PutItem",
        outcome="ConditionalCheckFailedException",
    )
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table, Item=product, ConditionExpression="attribute_not_exists(PK)"
        )
    outcome = "ConditionalCheckFailedException"
    assert (
        metric("marketsync_dynamodb_requests_total", operation="PutItem", outcome=outcome)
        == refused + 1
    )


def test_a_call_without_an_answer_is_counted_and_still_raises() -> None:
    client = make_dynamodb_client("us-east-1", "http://127.0.0.1:9")
    client.meta.config.retries["max_attempts"] = 1  # type: ignore[attr-defined]  # see test_dynamo
    meter_dynamodb(client, [], billed=False)
    outcome = "EndpointConnectionError"
    before = metric("marketsync_dynamodb_requests_total", operation="GetItem", outcome=outcome)
    with pytest.raises(EndpointConnectionError):
        client.get_item(TableName="t", Key={"PK": {"S": "p"}, "SK": {"S": "s"}})
    after = metric("marketsync_dynamodb_requests_total", operation="GetItem", outcome=outcome)
    assert after == before + 1
