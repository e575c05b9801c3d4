"""Walmart's side of the sandbox: the token, items and bulk inventories endpoints."""

from __future__ import annotations

import base64
import binascii
import re
import time

from dev.sandbox.catalogue import WalmartItem, walmart_catalogue
from dev.sandbox.http import (
    Answer,
    Interrupt,
    Request,
    Route,
    apply_faults,
    json_answer,
    route,
)
from dev.sandbox.state import SandboxState

PAGE_MAX = 50
_REQUIRED_HEADERS = ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID")


def _errors(status: int, code: str, message: str, category: str = "REQUEST") -> Answer:
    return json_answer(
        status,
        {"errors": [{"code": code, "message": message, "category": category, "severity": "ERROR"}]},
    )


def _throttled() -> Answer:
    answer = _errors(429, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "Too many requests")
    headers = {
        **answer.headers,
        "x-current-token-count": "0",
        "x-next-replenishment-time": str(int((time.time() + 1) * 1000)),
    }
    return Answer(answer.status, answer.body, headers)


def _unauthorized(message: str) -> Answer:
    return _errors(401, "UNAUTHORIZED.GMP_GATEWAY_API", message, category="DATA")


def _require_headers(request: Request) -> None:
    missing = [name for name in _REQUIRED_HEADERS if not request.header(name)]
    if missing:
        raise Interrupt(
            _errors(400, "INVALID_REQUEST_HEADER.GMP_GATEWAY_API", f"Missing {', '.join(missing)}")
        )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, separator, client_secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, client_secret) if separator else None


def token(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    _require_headers(request)
    credentials = _basic_credentials(request)
    if credentials is None:
        return _unauthorized("Basic authorization with the client id and secret is required")
    client_id, client_secret = credentials
    apply_faults(state, client_id, "walmartToken", _throttled)
    if request.form().get("grant_type") != "client_credentials":
        return _errors(400, "INVALID_REQUEST_PARAM.GMP_GATEWAY_API", "grant_type is invalid")
    if not client_id or not client_secret or "invalid" in client_id + client_secret:
        return _unauthorized("Unauthorized token or invalid client id or secret")
    return json_answer(
        200,
        {
            "access_token": state.issue_token(client_id, "eyJraWQi"),
            "token_type": "Bearer",
            "expires_in": 900,
        },
    )


def _authorize(state: SandboxState, request: Request, operation: str) -> str:
    _require_headers(request)
    grant = state.use_token(request.header("WM_SEC.ACCESS_TOKEN") or "")
    if grant is None:
        raise Interrupt(_unauthorized("Unauthorized token"))
    account, expired = grant
    apply_faults(state, account, operation, _throttled)
    if expired:
        raise Interrupt(_unauthorized("Access token expired"))
    return account


def _page(request: Request, default_limit: int) -> tuple[int, int]:
    raw_limit = request.param("limit")
    try:
        limit = int(raw_limit) if raw_limit else default_limit
    except ValueError:
        limit = 0
    if not 1 <= limit <= PAGE_MAX:
        raise Interrupt(
            _errors(400, "INVALID_REQUEST_PARAM.GMP_API", f"limit must be 1 to {PAGE_MAX}")
        )
    cursor = request.param("nextCursor") or "*"
    if cursor == "*":
        return 0, limit
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode()), limit
    except (binascii.Error, ValueError) as error:
        raise Interrupt(
            _errors(400, "INVALID_REQUEST_PARAM.GMP_API", "nextCursor is invalid")
        ) from error


def _cursor(offset: int | None) -> str | None:
    return None if offset is None else base64.urlsafe_b64encode(str(offset).encode()).decode()


def items(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "getAllItems")
    offset, limit = _page(request, default_limit=20)
    catalogue = walmart_catalogue(account)
    answer: dict[str, object] = {
        "ItemResponse": [_item(item) for item in catalogue[offset : offset + limit]],
        "totalItems": len(catalogue),
    }
    faults = state.faults(account)
    next_cursor = _cursor(faults.next_offset("getAllItems", offset, limit, len(catalogue)))
    if next_cursor:
        answer["nextCursor"] = next_cursor
    return json_answer(200, answer)


def _item(item: WalmartItem) -> dict[str, object]:
    return {
        "mart": "WALMART_US",
        "sku": item.sku,
        "wpid": item.wpid,
        "upc": item.upc,
        "gtin": "00" + item.upc,
        "productName": item.product_name,
        "shelf": '["Home Page","Home"]',
        "productType": item.product_type,
        # A JSON number, as Walmart sends it; two-decimal values print exactly.
        "price": {"currency": item.currency, "amount": float(item.price)},
        "publishedStatus": item.published_status,
        "lifecycleStatus": "ACTIVE",
    }


def inventories(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "getInventories")
    offset, limit = _page(request, default_limit=10)
    stocked = [item for item in walmart_catalogue(account) if item.nodes]
    meta: dict[str, object] = {"totalCount": len(stocked)}
    faults = state.faults(account)
    next_cursor = _cursor(faults.next_offset("getInventories", offset, limit, len(stocked)))
    if next_cursor:
        meta["nextCursor"] = next_cursor
    return json_answer(
        200,
        {
            "meta": meta,
            "elements": {
                "inventories": [_inventory(item) for item in stocked[offset : offset + limit]]
            },
        },
    )


def _inventory(item: WalmartItem) -> dict[str, object]:
    return {
        "sku": item.sku,
        "nodes": [
            {
                "shipNode": node.ship_node,
                "inputQty": {"unit": "EACH", "amount": node.available + 2},
                "availToSellQty": {"unit": "EACH", "amount": node.available},
                "reservedQty": {"unit": "EACH", "amount": 2},
            }
            for node in item.nodes
        ],
    }


ROUTES: tuple[Route, ...] = (
    route("POST", r"/v3/token", token),
    route("GET", r"/v3/items", items),
    route("GET", r"/v3/inventories", inventories),
)
