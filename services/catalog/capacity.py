"""DynamoDB capacity units, as on-demand billing counts them, and the catalog's DynamoDB metrics.

`meter_dynamodb` hooks botocore's events on the catalog's client: every call asks for
`ReturnConsumedCapacity=INDEXES`, and its units are what DynamoDB reports. A local server (moto,
dynalite) does not bill, so there each call's units are counted from the items' sizes the way
DynamoDB bills them:
- a put: its item's size rounded up per KB, plus the same for the entry of every global
  secondary index whose key attributes the item has (GSI1 projects every attribute); a delete
  or a refused conditional write 1; an update its request's size (the least it can cost);
  a transaction twice all that;
- a read: 4 KB units (a query's items summed first, other reads item by item, a key not
  found as the least a read costs), at least one, halved when eventually consistent (every
  index read is).

Each call's units also go to the `UnitTally` bound with `tally_units` where the call is made, so
a sync's batch can say what it cost (WriteSyncedProducts answers with it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from services.catalog.dynamo import item_size

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client.
    from mypy_boto3_dynamodb import DynamoDBClient

REQUESTS = Counter(
    "marketsync_dynamodb_requests_total",
    "DynamoDB calls the catalog made (after botocore's own retries), by outcome: ok or the "
    "error code (ProvisionedThroughputExceededException, ConditionalCheckFailedException...).",
    ["operation", "outcome"],
)
UNPROCESSED_ITEMS = Counter(
    "marketsync_dynamodb_unprocessed_items_total",
    "Items or keys a batch call left unprocessed, which the catalog then retried.",
    ["operation"],
)
CAPACITY_UNITS = Counter(
    "marketsync_dynamodb_capacity_units_total",
    "DynamoDB capacity units the catalog consumed (read or write request units on demand).",
    ["operation", "kind"],
)

Item = Mapping[str, Mapping[str, Any]]
Call = tuple[str, dict[str, Any]]  # (operation, API parameters)
Index = tuple[frozenset[str], str, frozenset[str]]  # (key attributes, projection, included)
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


@dataclass(frozen=True)
class Units:
    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(self.read + other.read, self.write + other.write)


def write_units_of(size: int) -> int:
    """Write units of an item or index entry of `size` bytes: one per started KB."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units_of(size: int, consistent: bool) -> float:
    """Read units of reading `size` bytes: one per started 4 KB, half eventually consistent."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def indexes_of(description: Mapping[str, Any]) -> list[Index]:
    """The global secondary indexes of a table definition (or a DescribeTable answer's table)."""
    table_keys = {key["AttributeName"] for key in description["KeySchema"]}
    found: list[Index] = []
    for index in description.get("GlobalSecondaryIndexes", []):
        keys = frozenset({key["AttributeName"] for key in index["KeySchema"]} | table_keys)
        projection = index["Projection"]
        included = frozenset(projection.get("NonKeyAttributes", []))
        found.append((keys, projection["ProjectionType"], included))
    return found


def put_units(item: Item, indexes: Sequence[Index]) -> int:
    """Write units of putting a new item: its own, and its entry in every index it lands in."""
    units = write_units_of(item_size(item))
    for keys, projection, included in indexes:
        if not keys <= item.keys():
            continue  # a sparse index: this item has no entry there
        if projection == "ALL":
            entry = item
        else:
            kept = keys | (included if projection == "INCLUDE" else frozenset())
            entry = {name: value for name, value in item.items() if name in kept}
        units += write_units_of(item_size(entry))
    return units


def write_units(calls: Sequence[Call], indexes: Sequence[Index]) -> int:
    """Write units of the calls, as if every put made a new item (a first sync's puts do)."""
    return int(sum(_request_write_units(operation, params, indexes) for operation, params in calls))


def _request_write_units(
    operation: str, params: Mapping[str, Any], indexes: Sequence[Index]
) -> float:
    if operation == "PutItem":
        return put_units(params["Item"], indexes)
    if operation == "BatchWriteItem":
        return sum(
            put_units(request["PutRequest"]["Item"], indexes) if "PutRequest" in request else 1
            for requests in params["RequestItems"].values()
            for request in requests
        )
    if operation == "TransactWriteItems":
        return sum(
            2 * put_units(entry["Put"]["Item"], indexes) if "Put" in entry else 2
            for entry in params["TransactItems"]
        )
    if operation == "UpdateItem":
        return write_units_of(
            item_size(params["Key"]) + item_size(params.get("ExpressionAttributeValues", {}))
        )
    if operation == "DeleteItem":
        return 1
    return 0


def estimated_units(
    operation: str,
    params: Mapping[str, Any],
    answer: Mapping[str, Any],
    indexes: Sequence[Index],
) -> Units:
    """What DynamoDB would bill for a call a local server answered (see the module's doc)."""
    error = answer.get("Error", {}).get("Code")
    if error:
        refused_write = operation in WRITE_OPERATIONS and error.startswith("ConditionalCheckFailed")
        return Units(write=1.0 if refused_write else 0.0)
    if operation == "BatchWriteItem":
        unprocessed = answer.get("UnprocessedItems", {})
        processed = {
            table: [request for request in requests if request not in unprocessed.get(table, [])]
            for table, requests in params["RequestItems"].items()
        }
        return Units(write=_request_write_units(operation, {"RequestItems": processed}, indexes))
    if operation in WRITE_OPERATIONS:
        return Units(write=_request_write_units(operation, params, indexes))
    consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
    if operation == "GetItem":
        return Units(read=read_units_of(item_size(answer.get("Item", {})), consistent))
    if operation in ("Query", "Scan"):
        size = sum(item_size(item) for item in answer.get("Items", []))
        return Units(read=read_units_of(size, consistent))
    if operation == "BatchGetItem":
        read = 0.0
        for table, request in params["RequestItems"].items():
            table_consistent = bool(request.get("ConsistentRead"))
            found = answer.get("Responses", {}).get(table, [])
            unprocessed = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            read += sum(read_units_of(item_size(item), table_consistent) for item in found)
            # A key read and not found costs the least a read does.
            missing = len(request["Keys"]) - len(found) - len(unprocessed)
            read += missing * read_units_of(0, table_consistent)
        return Units(read=read)
    return Units()


def reported_units(operation: str, answer: Mapping[str, Any]) -> Units:
    """The units DynamoDB says a call consumed (ReturnConsumedCapacity)."""
    consumed = answer.get("ConsumedCapacity", [])
    total = Units()
    for entry in consumed if isinstance(consumed, list) else [consumed]:
        if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
            total += Units(
                float(entry.get("ReadCapacityUnits", 0)), float(entry.get("WriteCapacityUnits", 0))
            )
        elif operation in WRITE_OPERATIONS:
            total += Units(write=float(entry.get("CapacityUnits", 0)))
        else:
            total += Units(read=float(entry.get("CapacityUnits", 0)))
    return total


class UnitTally:
    """Units consumed by the calls made while it is bound (`tally_units`), from any thread."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._units = Units()

    def add(self, units: Units) -> None:
        with self._lock:
            self._units += units

    @property
    def units(self) -> Units:
        with self._lock:
            return self._units


_tally: ContextVar[UnitTally | None] = ContextVar("capacity_tally", default=None)


@contextmanager
def tally_units() -> Iterator[UnitTally]:
    """Count the units of the calls made in this context (and in threads started from it with
    the context copied, as asyncio.to_thread does) until the block ends."""
    tally = UnitTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def meter_dynamodb(client: DynamoDBClient, indexes: Sequence[Index], *, billed: bool) -> None:
    """Count the client's calls, unprocessed items and capacity units (see the module's doc);
    `billed` False for a local server, whose units are counted from item sizes."""

    def ask(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "INDEXES"
        context["capacity_params"] = params
        context["capacity_operation"] = model.name

    def count(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = model.name
        REQUESTS.labels(operation, parsed.get("Error", {}).get("Code") or "ok").inc()
        unprocessed = _unprocessed(parsed)
        if unprocessed:
            UNPROCESSED_ITEMS.labels(operation).inc(unprocessed)
        if billed:
            units = reported_units(operation, parsed)
        else:
            params = context.get("capacity_params", {})
            units = estimated_units(operation, params, parsed, indexes)
        if units.read:
            CAPACITY_UNITS.labels(operation, "read").inc(units.read)
        if units.write:
            CAPACITY_UNITS.labels(operation, "write").inc(units.write)
        tally = _tally.get()
        if tally is not None:
            tally.add(units)

    def count_failure(exception: Exception, context: dict[str, Any], **_: Any) -> None:
        # No answer at all (connection refused, timed out): botocore names no model here.
        operation = context.get("capacity_operation", "unknown")
        REQUESTS.labels(operation, type(exception).__name__).inc()

    events = client.meta.events
    events.register("before-parameter-build.dynamodb", ask)
    events.register("after-call.dynamodb", count)
    events.register("after-call-error.dynamodb", count_failure)


def _unprocessed(answer: Mapping[str, Any]) -> int:
    items = sum(len(requests) for requests in answer.get("UnprocessedItems", {}).values())
    keys = sum(len(entry.get("Keys", [])) for entry in answer.get("UnprocessedKeys", {}).values())
    return items + keys
