"""One SP-API request: made in a worker thread (sp_api blocks), paced and retried by the
client's `Caller`, counted by HTTP status, its failures translated, its answer checked for the
data it should carry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, SellingApiException

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.errors import translating_failures
from services.sync.marketplaces.pacing import Caller, Transient
from services.sync.metrics import NO_ANSWER, count_request

T = TypeVar("T")

# Every request to Amazon: sp_api's, and the report download.
REQUEST_TIMEOUT_SECONDS = 60.0
NO_DATA = "sending answers without data"


async def sp_api_call(caller: Caller, operation: str, request: Callable[[], T]) -> T:
    """A blocking sp_api request, in a worker thread; waits and retries on the loop."""
    return await caller.call(
        operation,
        lambda: translating_failures(
            operation, lambda: _counted(operation, asyncio.to_thread(request))
        ),
    )


def with_payload(response: ApiResponse, key: str, kind: type = object) -> ApiResponse:
    """The answer, if it carries `key` as a `kind`: sp_api turns an empty-bodied error into an
    empty answer."""
    value = response.payload.get(key) if isinstance(response.payload, dict) else None
    if value is None or not isinstance(value, kind):
        raise Transient(NO_DATA)
    return response


def payload(response: ApiResponse, key: str) -> dict[str, Any]:
    """The answer's payload, if it carries `key`."""
    answer: dict[str, Any] = with_payload(response, key).payload
    return answer


def dicts(value: object) -> list[dict[str, Any]]:
    """The objects in a list from an answer; anything else in it, or in its place, is no data."""
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


async def _counted(operation: str, request: Awaitable[T]) -> T:
    """Count an sp_api request by its HTTP status. sp_api keeps a success's status to itself,
    so every success counts as 2xx."""
    try:
        answer = await request
    except SellingApiException as error:
        count_request(AMAZON, operation, error.code)
        raise
    except AuthorizationError as error:
        count_request(AMAZON, operation, error.status_code)
        raise
    except Exception:
        count_request(AMAZON, operation, NO_ANSWER)
        raise
    count_request(AMAZON, operation, "2xx")
    return answer
