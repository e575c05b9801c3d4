"""DynamoDB calls that know nothing of the table's layout: the client, error translation, item
sizes and the limits DynamoDB enforces but local servers don't, and batch calls within those
limits (`BatchCalls`).

One client per process: boto3 clients are thread-safe and hold the connection pool, so the
servicer's worker threads share it.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, TypeAlias

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from marketsync.backoff import Backoff
from marketsync.errors import ResourceExhausted, Unavailable

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client and plain dicts.
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        WriteRequestOutputTypeDef,
    )

Key = tuple[str, str]  # (PK, SK)
# An item as the client answers it, which every call also takes as it is.
Item: TypeAlias = "dict[str, AttributeValueTypeDef]"
# A BatchWriteItem request in the form the client answers unprocessed ones.
WriteRequest: TypeAlias = "WriteRequestOutputTypeDef"

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
THROTTLED_WRITE = "DynamoDB kept throttling the write; this product was not stored"


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


def failure_message(exc: Exception) -> str:
    """What one product's result in a batch says of a failed DynamoDB call: the batch goes on."""
    if isinstance(exc, ClientError) and error_code(exc) in THROTTLING_CODES:
        return THROTTLED_WRITE
    if is_retryable(exc):
        return "the product store was unavailable; this product was not stored"
    return "the product store refused this write; this product was not stored"


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


class BatchCalls:
    """BatchGetItem and BatchWriteItem on one table: keys a hundred a call and write requests 25
    a call, the calls side by side on a pool of workers, unprocessed keys and requests sent
    again with backoff until a deadline. Each call runs in its caller's context, so the caller's
    capacity tally (capacity.tally_units) counts it."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        backoff: Backoff,
        *,
        workers: int,
        thread_name_prefix: str,
    ) -> None:
        self._client = client
        self._table = table_name
        self._backoff = backoff
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix=thread_name_prefix)

    def get(
        self, keys: Iterable[Key], deadline: float, *, consistent: bool
    ) -> tuple[dict[Key, Item], set[Key], int]:
        """Items found by key, keys still unread when the deadline passed, and retries made."""
        queue = deque(keys)
        chunks = []
        while queue:
            chunks.append([queue.popleft() for _ in range(min(MAX_BATCH_GET_KEYS, len(queue)))])
        sent = [
            self._workers.submit(copy_context().run, self._get_chunk, chunk, deadline, consistent)
            for chunk in chunks
        ]
        found: dict[Key, Item] = {}
        unread: set[Key] = set()
        retries = 0
        for pending in sent:
            chunk_found, chunk_unread, chunk_retries = pending.result()
            found |= chunk_found
            unread |= chunk_unread
            retries += chunk_retries
        return found, unread, retries

    def write(
        self,
        requests: Sequence[tuple[str, WriteRequest]],
        deadline: float,
        before_each_call: Callable[[], None] = lambda: None,
    ) -> tuple[dict[str, str], int]:
        """Send write requests, each with the name of what it writes (a SKU), retrying
        unprocessed ones until the deadline.

        Returns the names whose requests were not all written, with the reason, and the number
        of retries made.
        """
        owners = {_request_key(request): name for name, request in requests}
        queue = deque(request for _, request in requests)
        chunks = []
        while queue:
            chunks.append(_take_distinct(queue))
        sent = [
            self._workers.submit(
                copy_context().run, self._write_chunk, chunk, deadline, before_each_call
            )
            for chunk in chunks
        ]
        failures: dict[str, str] = {}
        retries = 0
        for pending in sent:
            unwritten, chunk_retries = pending.result()
            retries += chunk_retries
            for request, reason in unwritten:
                failures[owners[_request_key(request)]] = reason
        return failures, retries

    def _get_chunk(
        self, chunk: list[Key], deadline: float, consistent: bool
    ) -> tuple[dict[Key, Item], set[Key], int]:
        """One BatchGetItem of up to 100 keys, its unprocessed keys asked again until the
        deadline."""
        found: dict[Key, Item] = {}
        retries = 0
        while True:
            request: dict[str, KeysAndAttributesTypeDef] = {
                self._table: {
                    "Keys": [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in chunk],
                    "ConsistentRead": consistent,
                }
            }
            try:
                answer = self._client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise translate(exc) from exc
                unprocessed = chunk
            else:
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[(item["PK"]["S"], item["SK"]["S"])] = item
                left = answer.get("UnprocessedKeys", {}).get(self._table)
                pending = left.get("Keys", []) if left else []
                unprocessed = [(key["PK"]["S"], key["SK"]["S"]) for key in pending]
            if not unprocessed:
                return found, set(), retries
            if not self._backoff.sleep(retries, deadline):
                return found, set(unprocessed), retries + 1
            retries += 1
            chunk = unprocessed

    def _write_chunk(
        self, chunk: list[WriteRequest], deadline: float, before_each_call: Callable[[], None]
    ) -> tuple[list[tuple[WriteRequest, str]], int]:
        """One BatchWriteItem of up to 25 distinct keys, its unprocessed requests sent again
        until the deadline; the requests left unwritten with the reason, and the retries."""
        retries = 0
        while True:
            before_each_call()
            try:
                answer = self._client.batch_write_item(RequestItems={self._table: chunk})
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    return [(request, failure_message(exc)) for request in chunk], retries
                unprocessed, reason = chunk, failure_message(exc)
            else:
                unprocessed = answer.get("UnprocessedItems", {}).get(self._table, [])
                reason = THROTTLED_WRITE
            if not unprocessed:
                return [], retries
            if not self._backoff.sleep(retries, deadline):
                return [(request, reason) for request in unprocessed], retries + 1
            retries += 1
            chunk = unprocessed


def _request_key(request: WriteRequest) -> Key:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
    else:
        item = request["DeleteRequest"]["Key"]
    return item["PK"]["S"], item["SK"]["S"]


def _take_distinct(queue: deque[WriteRequest]) -> list[WriteRequest]:
    """Up to 25 requests with distinct keys, as BatchWriteItem demands."""
    chunk: list[WriteRequest] = []
    keys: set[Key] = set()
    while queue and len(chunk) < MAX_BATCH_WRITE_ITEMS:
        key = _request_key(queue[0])
        if key in keys:
            break
        keys.add(key)
        chunk.append(queue.popleft())
    return chunk
