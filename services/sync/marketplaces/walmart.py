"""A Walmart seller's whole catalogue, through the Marketplace API v3 (httpx, asyncio).

Stock comes from the bulk inventories endpoint (a quantity per SKU, not the catalogue) and items
from the items endpoint, both in pages of at most 50. The two are read at once, each paced on its
own rate limit, and joined by SKU as they arrive: an item goes on as soon as its stock is known,
or once the inventory is complete (an item without stock has none). Answers are parsed with
Decimal for every JSON number with a fraction, so prices never pass through a float.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx

from marketsync.backoff import Backoff
from marketsync.marketplaces import WALMART
from services.sync.marketplaces.pacing import (
    MARKETPLACE_BACKOFF,
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
    require_credentials,
    shown,
    tls_context,
    to_cents,
)
from services.sync.metrics import NO_ANSWER, count_request

T = TypeVar("T")

PAGE_LIMIT = 50
# Pages read ahead of the sync's writing, items and stock together.
QUEUED_PAGES = 4
REQUEST_TIMEOUT_SECONDS = 30.0
SERVICE_NAME = "Walmart Marketplace"
TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
REQUIRED_CREDENTIALS = ("client_id", "client_secret")
NO_DATA = "sending answers without data"
FIRST_CURSOR = "*"
CURRENCY = re.compile(r"[A-Z]{3}")
TEXT_FIELDS = ("productName", "productType", "wpid", "publishedStatus", "brand", "mainImageUrl")

# A SKU's available-to-sell count, or why it cannot be read.
Quantity = int | SkippedItem
STOCK, ITEMS = "stock", "items"


@dataclass(frozen=True)
class _Arrival:
    """A page one of the reading loops got (`STOCK` or `ITEMS`); None after its last page."""

    source: str
    page: list[Any] | None
    # Of an ITEMS page: how many items Walmart says the seller has, when its answer says.
    total: int | None = None


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
        backoff: Backoff = MARKETPLACE_BACKOFF,
    ) -> None:
        require_credentials(WALMART, credentials, REQUIRED_CREDENTIALS)
        self._endpoints = endpoints
        self._token = _AccessToken(
            credentials["client_id"], credentials["client_secret"], pacer.clock
        )
        self._account = f"{WALMART}:{account}"
        self._pacer = pacer
        self._backoff = backoff

    async def pages(self) -> AsyncGenerator[CatalogPage, None]:
        async with httpx.AsyncClient(
            base_url=self._endpoints.base_url,
            timeout=REQUEST_TIMEOUT_SECONDS,
            verify=tls_context(),
        ) as http:
            arrivals: asyncio.Queue[_Arrival | Exception] = asyncio.Queue(QUEUED_PAGES)
            readers = [
                asyncio.create_task(_read(STOCK, self._stock_pages(http), arrivals)),
                asyncio.create_task(_read(ITEMS, self._item_pages(http), arrivals)),
            ]
            try:
                join = _Join()
                said_anything = False
                while not join.complete:
                    arrival = await arrivals.get()
                    if isinstance(arrival, Exception):
                        raise arrival
                    page = join.take(arrival)
                    if page.products or page.skipped:
                        said_anything = True
                        yield page
                if not said_anything and join.items_total is not None:
                    # An empty catalogue has a size all the same: 0.
                    yield CatalogPage(items_total=join.items_total)
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)

    async def _item_pages(self, http: httpx.AsyncClient) -> AsyncGenerator[_Arrival, None]:
        cursors = PageCursors(
            WALMART,
            "Walmart kept returning the same page of items; try again later",
            first=FIRST_CURSOR,
        )
        cursor = FIRST_CURSOR
        while True:
            paging = {"nextCursor": cursor, "limit": PAGE_LIMIT}
            answer = await self._get(http, "getAllItems", "/v3/items", paging, _items_of)
            yield _Arrival(ITEMS, answer["ItemResponse"], total_items(answer))
            cursor = cursors.follow(answer.get("nextCursor"))
            if not cursor:
                return

    async def _stock_pages(self, http: httpx.AsyncClient) -> AsyncGenerator[_Arrival, None]:
        """Available-to-sell quantity per SKU, summed over its ship nodes, a page at a time."""
        cursors = PageCursors(
            WALMART, "Walmart kept returning the same page of inventory; try again later"
        )
        cursor = ""
        while True:
            paging: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                paging["nextCursor"] = cursor
            answer = await self._get(
                http, "getInventories", "/v3/inventories", paging, _inventories_of
            )
            stock = []
            for inventory in _inventories_of(answer) or []:
                if not isinstance(inventory, dict):
                    continue
                sku = inventory.get("sku")
                # Stock that names no SKU as text belongs to no item this sync could write.
                if isinstance(sku, str):
                    stock.append((sku, _available_to_sell(sku, inventory.get("nodes"))))
            yield _Arrival(STOCK, stock)
            meta = answer.get("meta")
            cursor = cursors.follow(meta.get("nextCursor") if isinstance(meta, dict) else None)
            if not cursor:
                return

    async def _get(
        self,
        http: httpx.AsyncClient,
        operation: str,
        path: str,
        params: dict[str, Any],
        expected: Callable[[dict[str, Any]], object],
    ) -> dict[str, Any]:
        sent = ""

        async def attempt() -> dict[str, Any]:
            nonlocal sent
            sent = await self._token.get(http)
            response = await http.get(path, params=params, headers=_headers(sent))
            count_request(WALMART, operation, response.status_code)
            answer = _answer(response, operation)
            if expected(answer) is None:
                raise Transient(NO_DATA)
            return answer

        caller = Caller(
            marketplace_label="Walmart",
            account=self._account,
            pacer=self._pacer,
            backoff=self._backoff,
            # The other reading loop may have replaced a refused token already: only the token
            # this call sent is dropped, or both loops would fetch a new one.
            refresh_token=lambda: self._token.drop(sent),
        )
        return await caller.call(
            operation, lambda: _translating_transport_failures(operation, attempt)
        )


class _AccessToken:
    """The seller's access token, shared by the reading loops: fetched by one at a time."""

    def __init__(self, client_id: str, client_secret: str, clock: Callable[[], float]) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._renewal_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._renewal_at:
                self._token = await self._fetch(http)
            return self._token

    def drop(self, token: str) -> None:
        """Forgets the token, unless it has been replaced already."""
        if token == self._token:
            self._token = None

    async def _fetch(self, http: httpx.AsyncClient) -> str:
        response = await http.post(
            "/v3/token",
            data={"grant_type": "client_credentials"},
            auth=(self._client_id, self._client_secret),
            headers={
                "WM_QOS.CORRELATION_ID": str(uuid.uuid4()),
                "WM_SVC.NAME": SERVICE_NAME,
                "Accept": "application/json",
            },
        )
        count_request(WALMART, "token", response.status_code)
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
        self._renewal_at = self._clock() + lifetime - TOKEN_RENEWAL_MARGIN_SECONDS
        return str(token)


class _Join:
    """Items and their stock, joined by SKU as the two arrive, in any order.

    It holds only what waits for its other half: items whose SKU the inventory has not reached
    yet, and stock whose item has not come yet. Once the inventory is complete, an item without
    stock has none (quantity 0) and items go straight through.
    """

    def __init__(self) -> None:
        self._stock: dict[str, Quantity] = {}
        self._waiting: dict[str, list[MarketplaceProduct]] = {}
        self._stock_complete = False
        self._items_complete = False
        self.items_total: int | None = None

    @property
    def complete(self) -> bool:
        return self._stock_complete and self._items_complete

    def take(self, arrival: _Arrival) -> CatalogPage:
        """What the arrival lets go on, with the catalogue's size once Walmart has said it."""
        if self.items_total is None and arrival.source == ITEMS:
            # The first answer's count: where the sync ends stays put while it runs.
            self.items_total = arrival.total
        return replace(self._let_go(arrival), items_total=self.items_total)

    def _let_go(self, arrival: _Arrival) -> CatalogPage:
        if arrival.source == ITEMS:
            if arrival.page is None:
                self._items_complete = True
                return CatalogPage()
            return self.add_items(arrival.page)
        if arrival.page is None:
            return self.complete_stock()
        return self.add_stock(arrival.page)

    def add_items(self, items: Iterable[object]) -> CatalogPage:
        page = CatalogPage()
        for item in items:
            product = _product(item)
            if isinstance(product, SkippedItem):
                page.skipped.append(product)
            elif self._stock_complete or product.sku in self._stock:
                _add(page, _stocked(product, self._stock.pop(product.sku, 0)))
            else:
                self._waiting.setdefault(product.sku, []).append(product)
        return page

    def add_stock(self, stock: Iterable[tuple[str, Quantity]]) -> CatalogPage:
        page = CatalogPage()
        for sku, quantity in stock:
            waiting = self._waiting.pop(sku, None)
            if waiting is None:
                self._stock[sku] = quantity
            else:
                for product in waiting:
                    _add(page, _stocked(product, quantity))
        return page

    def complete_stock(self) -> CatalogPage:
        """The inventory has been read: SKUs it did not name have no stock."""
        self._stock_complete = True
        page = CatalogPage()
        for waiting in self._waiting.values():
            for product in waiting:
                _add(page, _stocked(product, 0))
        self._waiting.clear()
        return page


async def _read(
    source: str,
    pages: AsyncGenerator[_Arrival, None],
    arrivals: asyncio.Queue[_Arrival | Exception],
) -> None:
    """Hands on every page, then None; or the failure, which ends the sync."""
    try:
        async with aclosing(pages):
            async for page in pages:
                await arrivals.put(page)
    except Exception as failure:
        await arrivals.put(failure)
        return
    await arrivals.put(_Arrival(source, None))


def _headers(token: str) -> dict[str, str]:
    return {
        "WM_SEC.ACCESS_TOKEN": token,
        "WM_QOS.CORRELATION_ID": str(uuid.uuid4()),
        "WM_SVC.NAME": SERVICE_NAME,
        "Accept": "application/json",
    }


def _items_of(answer: dict[str, Any]) -> list[object] | None:
    items = answer.get("ItemResponse")
    return items if isinstance(items, list) else None


def total_items(answer: dict[str, Any]) -> int | None:
    """How many items the seller has, as an items answer's totalItems says; None when it says
    nothing a count can be read from."""
    # A count the sync log holds, like a stock count.
    return parse_quantity(answer.get("totalItems"))


def _inventories_of(answer: dict[str, Any]) -> list[object] | None:
    elements = answer.get("elements")
    inventories = elements.get("inventories") if isinstance(elements, dict) else None
    return inventories if isinstance(inventories, list) else None


def _available_to_sell(sku: str, nodes: object) -> Quantity:
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


async def _translating_transport_failures(operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
    try:
        return await attempt()
    except httpx.TransportError as error:
        count_request(WALMART, operation, NO_ANSWER)
        raise Transient(f"dropping the connection ({type(error).__name__})") from error


def _add(page: CatalogPage, outcome: MarketplaceProduct | SkippedItem) -> None:
    if isinstance(outcome, SkippedItem):
        page.skipped.append(outcome)
    else:
        page.products.append(outcome)


def _stocked(product: MarketplaceProduct, quantity: Quantity) -> MarketplaceProduct | SkippedItem:
    if isinstance(quantity, SkippedItem):
        return quantity
    return replace(product, inventory_quantity=quantity)


def _product(item: object) -> MarketplaceProduct | SkippedItem:
    """The item as a product, its stock still to come (0 until then)."""
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
    return MarketplaceProduct(
        sku=sku,
        marketplace=WALMART,
        title=texts["productName"],
        description="",
        brand=texts["brand"],
        category=texts["productType"],
        price=amount,
        currency=currency,
        inventory_quantity=0,
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
