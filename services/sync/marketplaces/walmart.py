"""A Walmart seller's whole catalogue, through the Marketplace API v3 (httpx).

Stock comes first, from the bulk inventories endpoint (a quantity per SKU, not the catalogue),
then items are read page by page (at most 50 a page) and each page is handed on at once.
Answers are parsed with Decimal for every JSON number with a fraction, so prices never pass
through a float.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx

from services.sync.marketplaces.pacing import Backoff, Caller, Pacer, TokenRejected, Transient
from services.sync.marketplaces.records import (
    WALMART,
    CatalogPage,
    MarketplaceError,
    MarketplaceProduct,
    SkippedItem,
    WalmartEndpoints,
)

T = TypeVar("T")

PAGE_LIMIT = 50
REQUEST_TIMEOUT_SECONDS = 30.0
SERVICE_NAME = "Walmart Marketplace"
TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
REQUIRED_CREDENTIALS = ("client_id", "client_secret")
NO_DATA = "sending answers without data"


class WalmartCatalog:
    """Every item of one Walmart seller, page by page.

    `account` names the seller account for pacing (the organization id): syncs of one account
    share its rate limits.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        endpoints: WalmartEndpoints,
        pacer: Pacer,
        *,
        account: str,
        backoff: Backoff = Backoff(),  # noqa: B008 - immutable
    ) -> None:
        missing = [name for name in REQUIRED_CREDENTIALS if not credentials.get(name)]
        if missing:
            raise MarketplaceError(
                WALMART, f"The Walmart credentials have no {', '.join(missing)}: save them again"
            )
        self._client_id = credentials["client_id"]
        self._client_secret = credentials["client_secret"]
        self._endpoints = endpoints
        self._access_token: str | None = None
        self._token_renewal_at = 0.0
        self._caller = Caller(
            marketplace_label="Walmart",
            account=f"{WALMART}:{account}",
            pacer=pacer,
            backoff=backoff,
            refresh_token=self._drop_access_token,
        )

    def pages(self) -> Iterator[CatalogPage]:
        with httpx.Client(
            base_url=self._endpoints.base_url, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            stock = self._stock(http)
            cursor = "*"
            while True:
                paging = {"nextCursor": cursor, "limit": PAGE_LIMIT}
                answer = self._get(http, "getAllItems", "/v3/items", paging, _items_of)
                yield _page(answer["ItemResponse"], stock)
                cursor = answer.get("nextCursor") or ""
                if not cursor:
                    return

    def _stock(self, http: httpx.Client) -> dict[str, int]:
        """Available-to-sell quantity per SKU, summed over its ship nodes."""
        stock: dict[str, int] = {}
        cursor = ""
        while True:
            paging: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                paging["nextCursor"] = cursor
            answer = self._get(http, "getInventories", "/v3/inventories", paging, _inventories_of)
            for inventory in _inventories_of(answer):
                stock[inventory.get("sku", "")] = sum(
                    int((node.get("availToSellQty") or {}).get("amount") or 0)
                    for node in inventory.get("nodes") or []
                )
            cursor = (answer.get("meta") or {}).get("nextCursor") or ""
            if not cursor:
                return stock

    def _get(
        self,
        http: httpx.Client,
        operation: str,
        path: str,
        params: dict[str, Any],
        expected: Callable[[dict[str, Any]], object],
    ) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            response = http.get(path, params=params, headers=self._headers(http))
            answer = _answer(response, operation)
            if expected(answer) is None:
                raise Transient(NO_DATA)
            return answer

        return self._caller.call(operation, lambda: _translating_transport_failures(attempt))

    def _headers(self, http: httpx.Client) -> dict[str, str]:
        return {
            "WM_SEC.ACCESS_TOKEN": self._token(http),
            "WM_QOS.CORRELATION_ID": str(uuid.uuid4()),
            "WM_SVC.NAME": SERVICE_NAME,
            "Accept": "application/json",
        }

    def _token(self, http: httpx.Client) -> str:
        clock = self._caller.pacer.clock
        if self._access_token is None or clock() >= self._token_renewal_at:
            response = http.post(
                "/v3/token",
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
                headers={
                    "WM_QOS.CORRELATION_ID": str(uuid.uuid4()),
                    "WM_SVC.NAME": SERVICE_NAME,
                    "Accept": "application/json",
                },
            )
            if response.status_code in (400, 401):
                raise MarketplaceError(
                    WALMART,
                    "Walmart rejected the client id or secret: check client_id and client_secret",
                )
            answer = _answer(response, "the token request")
            token = answer.get("access_token")
            if not token:
                raise Transient(NO_DATA)
            lifetime = float(answer.get("expires_in") or 900)
            self._access_token = token
            self._token_renewal_at = clock() + lifetime - TOKEN_RENEWAL_MARGIN_SECONDS
        return self._access_token

    def _drop_access_token(self) -> None:
        self._access_token = None


def _items_of(answer: dict[str, Any]) -> list[dict[str, Any]] | None:
    items = answer.get("ItemResponse")
    return items if isinstance(items, list) else None


def _inventories_of(answer: dict[str, Any]) -> list[dict[str, Any]] | None:
    inventories = (answer.get("elements") or {}).get("inventories")
    return inventories if isinstance(inventories, list) else None


def _answer(response: httpx.Response, operation: str) -> dict[str, Any]:
    """The JSON answer of a successful call; anything else raised as what it means."""
    if response.status_code == 401:
        raise TokenRejected(f"HTTP 401 on {operation}")
    if response.status_code == 429:
        raise Transient("throttling")
    if response.status_code >= 500:
        raise Transient(f"failing (HTTP {response.status_code})")
    if response.status_code != 200:
        status, message = response.status_code, _error_message(response)
        raise MarketplaceError(WALMART, f"Walmart refused {operation} (HTTP {status}: {message})")
    try:
        answer = json.loads(response.content, parse_float=Decimal)
    except ValueError as error:
        raise Transient(NO_DATA) from error
    if not isinstance(answer, dict):
        raise Transient(NO_DATA)
    return answer


def _error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or [{}]
        return str(errors[0].get("message") or errors[0].get("description") or "no details")
    except (ValueError, AttributeError, IndexError):
        return "no details"


def _translating_transport_failures(attempt: Callable[[], T]) -> T:
    try:
        return attempt()
    except httpx.TransportError as error:
        raise Transient(f"dropping the connection ({type(error).__name__})") from error


def _page(items: list[dict[str, Any]], stock: dict[str, int]) -> CatalogPage:
    page = CatalogPage()
    for item in items:
        product = _product(item, stock)
        if isinstance(product, SkippedItem):
            page.skipped.append(product)
        else:
            page.products.append(product)
    return page


def _product(item: dict[str, Any], stock: dict[str, int]) -> MarketplaceProduct | SkippedItem:
    sku = str(item.get("sku") or "")
    if not sku:
        return SkippedItem("", f"Walmart gave an item without a SKU (wpid {item.get('wpid')})")
    price = item.get("price") or {}
    amount = _decimal(price.get("amount"))
    if amount is None or amount < 0:
        return SkippedItem(sku, f"Walmart gives the price {price.get('amount')!r}, not an amount")
    currency = price.get("currency")
    if not currency:
        return SkippedItem(sku, "Walmart gives the price without a currency")
    return MarketplaceProduct(
        sku=sku,
        marketplace=WALMART,
        title=item.get("productName") or "",
        description="",
        brand=item.get("brand") or "",
        category=item.get("productType") or "",
        price=amount,
        currency=currency,
        inventory_quantity=stock.get(sku, 0),
        image_url=item.get("mainImageUrl") or "",
        asin="",
        external_id=item.get("wpid") or "",
        status=item.get("publishedStatus") or "",
    )


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
