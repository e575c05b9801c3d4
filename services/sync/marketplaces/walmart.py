"""A Walmart seller's whole catalogue, through the Marketplace API v3 (httpx).

Stock comes first, from the bulk inventories endpoint (a quantity per SKU, not the catalogue),
then items are read page by page (at most 50 a page) and each page is handed on at once.
Answers are parsed with Decimal for every JSON number with a fraction, so prices never pass
through a float.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx

from marketsync.marketplaces import WALMART
from services.sync.marketplaces.pacing import (
    Backoff,
    Caller,
    Pacer,
    PageCursors,
    TokenRejected,
    Transient,
)
from services.sync.marketplaces.records import (
    MAX_QUANTITY,
    CatalogPage,
    MarketplaceError,
    MarketplaceProduct,
    SkippedItem,
    WalmartEndpoints,
    parse_quantity,
    shown,
    to_cents,
)

T = TypeVar("T")

PAGE_LIMIT = 50
REQUEST_TIMEOUT_SECONDS = 30.0
SERVICE_NAME = "Walmart Marketplace"
TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
REQUIRED_CREDENTIALS = ("client_id", "client_secret")
NO_DATA = "sending answers without data"
FIRST_CURSOR = "*"
CURRENCY = re.compile(r"[A-Z]{3}")
TEXT_FIELDS = ("productName", "productType", "wpid", "publishedStatus", "brand", "mainImageUrl")

# Stock per SKU: the available-to-sell count, or why it cannot be read.
Stock = dict[str, int | SkippedItem]


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
            cursors = PageCursors(
                WALMART,
                "Walmart kept returning the same page of items; try again later",
                first=FIRST_CURSOR,
            )
            cursor = FIRST_CURSOR
            while True:
                paging = {"nextCursor": cursor, "limit": PAGE_LIMIT}
                answer = self._get(http, "getAllItems", "/v3/items", paging, _items_of)
                yield _page(answer["ItemResponse"], stock)
                cursor = cursors.follow(answer.get("nextCursor"))
                if not cursor:
                    return

    def _stock(self, http: httpx.Client) -> Stock:
        """Available-to-sell quantity per SKU, summed over its ship nodes."""
        stock: Stock = {}
        cursors = PageCursors(
            WALMART, "Walmart kept returning the same page of inventory; try again later"
        )
        cursor = ""
        while True:
            paging: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                paging["nextCursor"] = cursor
            answer = self._get(http, "getInventories", "/v3/inventories", paging, _inventories_of)
            for inventory in _inventories_of(answer) or []:
                sku = inventory.get("sku") if isinstance(inventory, dict) else None
                # Stock that names no SKU as text belongs to no item this sync could write.
                if isinstance(sku, str):
                    stock[sku] = _available_to_sell(sku, inventory.get("nodes"))
            meta = answer.get("meta")
            cursor = cursors.follow(meta.get("nextCursor") if isinstance(meta, dict) else None)
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


def _items_of(answer: dict[str, Any]) -> list[object] | None:
    items = answer.get("ItemResponse")
    return items if isinstance(items, list) else None


def _inventories_of(answer: dict[str, Any]) -> list[object] | None:
    elements = answer.get("elements")
    inventories = elements.get("inventories") if isinstance(elements, dict) else None
    return inventories if isinstance(inventories, list) else None


def _available_to_sell(sku: str, nodes: object) -> int | SkippedItem:
    """The SKU's available-to-sell count over its ship nodes, or why it cannot be read."""
    if nodes is None:
        return 0
    if not isinstance(nodes, list):
        return SkippedItem(sku, f"Walmart gives the SKU's ship nodes as {shown(nodes)}, not a list")
    total = 0
    for node in nodes:
        available = node.get("availToSellQty") if isinstance(node, dict) else None
        amount = available.get("amount") if isinstance(available, dict) else None
        count = 0 if amount is None else parse_quantity(amount)
        if count is None:
            return SkippedItem(
                sku,
                f"Walmart gives the available-to-sell quantity {shown(amount)}, not a whole "
                f"number from 0 to {MAX_QUANTITY}",
            )
        total += count
    # Each node's count is one the catalog holds; so many that their sum is not, is its limit.
    return min(total, MAX_QUANTITY)


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


def _page(items: list[object], stock: Stock) -> CatalogPage:
    page = CatalogPage()
    for item in items:
        product = _product(item, stock)
        if isinstance(product, SkippedItem):
            page.skipped.append(product)
        else:
            page.products.append(product)
    return page


def _product(item: object, stock: Stock) -> MarketplaceProduct | SkippedItem:
    if not isinstance(item, dict):
        return SkippedItem("", f"Walmart gave an item that is not an object: {shown(item)}")
    sku = item.get("sku")
    if not sku or not isinstance(sku, str):
        return SkippedItem(
            "",
            f"Walmart gave an item without a SKU as text (sku {shown(sku)}, "
            f"wpid {shown(item.get('wpid'))})",
        )
    texts = _texts(sku, item)
    if isinstance(texts, SkippedItem):
        return texts
    price = _price(sku, item.get("price"))
    if isinstance(price, SkippedItem):
        return price
    amount, currency = price
    quantity = stock.get(sku, 0)
    if isinstance(quantity, SkippedItem):
        return quantity
    return MarketplaceProduct(
        sku=sku,
        marketplace=WALMART,
        title=texts["productName"],
        description="",
        brand=texts["brand"],
        category=texts["productType"],
        price=amount,
        currency=currency,
        inventory_quantity=quantity,
        image_url=texts["mainImageUrl"],
        asin="",
        external_id=texts["wpid"],
        status=texts["publishedStatus"],
    )


def _texts(sku: str, item: dict[str, Any]) -> dict[str, str] | SkippedItem:
    """The item's text fields ("" when absent), or the first that is not text."""
    texts = {}
    for name in TEXT_FIELDS:
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            return SkippedItem(sku, f"Walmart gives {name} as {shown(value)}, not text")
        texts[name] = value or ""
    return texts


def _price(sku: str, price: object) -> tuple[Decimal, str] | SkippedItem:
    """The item's amount, to the cent, and its currency."""
    if not isinstance(price, dict):
        return SkippedItem(
            sku, f"Walmart gives the price as {shown(price)}, not an amount and a currency"
        )
    amount = _decimal(price.get("amount"))
    if amount is None or amount.is_signed():
        return SkippedItem(
            sku, f"Walmart gives the price {shown(price.get('amount'))}, not an amount"
        )
    cents = to_cents(amount)
    if cents is None:
        return SkippedItem(
            sku,
            f"Walmart gives the price {shown(amount)} with more than 2 decimal places; "
            "prices are kept to the cent, so correct it in Walmart Seller Center",
        )
    currency = price.get("currency")
    if not currency:
        return SkippedItem(sku, "Walmart gives the price without a currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        return SkippedItem(
            sku, f"Walmart gives the currency {shown(currency)}, not a three-letter code like USD"
        )
    return cents, currency


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
