"""An Amazon seller's whole catalogue, through SP-API (python-amazon-sp-api), from asyncio.

The listings report (GET_MERCHANT_LISTINGS_ALL_DATA) is the complete catalogue in one gzip
TSV. It is downloaded to a temporary file, then read in pages: each page is enriched with brand,
category and main image from Catalog Items, 20 ASINs a call, and its FBA listings get their
stock from FBA inventory, so a sync holds one page at a time, never the catalogue.

Each operation has a rate limit of its own, so the phases overlap: FBA inventory is read from
the start, while the report is made and pages are enriched; only a page with FBA listings waits
for it. sp_api blocks, so each of its calls runs in a worker thread; every wait (pacing,
backoff, report polling) is awaited on the event loop.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from itertools import islice, repeat
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from sp_api.api import CatalogItems, Inventories, Reports
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, Client, SellingApiException
from sp_api.base.credential_provider import FromCodeCredentialProvider

from marketsync.backoff import Backoff
from marketsync.marketplaces import AMAZON
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
    AmazonEndpoints,
    CatalogPage,
    Enrichment,
    MarketplaceError,
    MarketplaceProduct,
    SkippedItem,
    StoredEnrichment,
    nothing_stored,
    parse_quantity,
    shown,
    tls_context,
    to_cents,
)
from services.sync.metrics import NO_ANSWER, count_request

T = TypeVar("T")

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
DEFAULT_MARKETPLACE_ID = "ATVPDKIKX0DER"
PAGE_SIZE = 100
CATALOG_IDENTIFIERS_PER_CALL = 20
REPORT_DEADLINE_SECONDS = 3600.0
# Small reports are done in seconds, a large one takes minutes: poll soon, then less often.
REPORT_POLL_PAUSES_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
REPORT_POLL_LONGEST_PAUSE_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 60.0
TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
REQUIRED_CREDENTIALS = ("refresh_token", "lwa_app_id", "lwa_client_secret")
REQUIRED_COLUMNS = ("seller-sku", "price")
MERCHANT_FULFILLED = "DEFAULT"
CURRENCIES = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1805IZSGTT6HS": "EUR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A21TJRUUN4KGV": "INR",
}
NO_DATA = "sending answers without data"


class AccessTokenCache:
    """Access tokens per (token URL, client, refresh token), refreshed one caller at a time.

    It replaces sp_api's module-global cache, which is keyed by the refresh token alone, keeps
    every token for a fixed 3200 s whatever `expires_in` says, and is not safe across threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str, str], fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            token, renew_at = self._tokens.get(key, ({}, 0.0))
            if self._clock() >= renew_at:
                token = fetch()
                lifetime = float(token.get("expires_in") or 3600)
                renew_at = self._clock() + lifetime - TOKEN_RENEWAL_MARGIN_SECONDS
                with self._guard:
                    self._tokens[key] = (token, renew_at)
            return token

    def drop(self, key: tuple[str, str, str], token: dict[str, Any]) -> None:
        """Forgets the token, unless another call has replaced it already: calls made at once
        that are all refused the same token then fetch one new token, not one each."""
        with self._guard:
            if key in self._tokens and self._tokens[key][0] is token:
                del self._tokens[key]


access_tokens = AccessTokenCache()


def token_key(
    url: str, client_id: str, client_secret: str, refresh_token: str
) -> tuple[str, str, str]:
    """Whoever presents all of these got this token from LWA: an organization that knows a
    seller's app id and refresh token but not the secret never gets the cached token."""
    secret = hashlib.sha256(f"{client_secret}\0{refresh_token}".encode()).hexdigest()
    return (url, client_id, secret)


class _LwaTokenClient(AccessTokenClient):  # type: ignore[misc]  # sp_api ships no types
    """sp_api's token client, pointed at the configured LWA URL and using `access_tokens`.

    sp_api gives every API client a token client of its own; it remembers the token it last
    handed out, the one to drop when the client's request is refused.
    """

    handed_out: dict[str, Any] | None = None

    @classmethod
    def url(cls) -> str:
        return f"{cls.scheme}{cls.host}{cls.path}"

    def get_auth(self) -> AccessTokenResponse:
        key = token_key(
            self.url(), self.cred.client_id, self.cred.client_secret, self.cred.refresh_token
        )
        token = access_tokens.get(key, lambda: self._request(self.url(), self.data, self.headers))
        self.handed_out = token
        return AccessTokenResponse(**token)


@lru_cache(maxsize=16)
def _token_client_class(lwa_token_url: str) -> type[_LwaTokenClient]:
    target = urlsplit(lwa_token_url)
    attributes = {"scheme": f"{target.scheme}://", "host": target.netloc, "path": target.path}
    return type("ConfiguredLwaTokenClient", (_LwaTokenClient,), attributes)


@dataclass(frozen=True)
class _Marketplace:
    """What sp_api reads from a marketplace: the SP-API endpoint comes from operator settings."""

    endpoint: str
    marketplace_id: str
    region: str = "us-east-1"


@dataclass(frozen=True)
class _ReportDocument:
    url: str
    compression: str | None


@dataclass(frozen=True)
class _ReportRow:
    """A line of the listings report (the header is line 1), its values by column name."""

    line: int
    fields: dict[str, str]


@dataclass(frozen=True)
class _Listing:
    """A report row that can become a product."""

    sku: str
    fields: dict[str, str]
    price: Decimal
    # None for an FBA listing: its stock comes from FBA inventory.
    quantity: int | None

    @property
    def asin(self) -> str:
        return self.fields.get("asin1", "")


class _FbaStock:
    """Fulfillable FBA quantity per SKU (or why it cannot be read), gathered while the report
    is still being made: every SKU the inventory names until the report says which listings
    are FBA, then only those."""

    def __init__(self) -> None:
        self._quantities: dict[str, int | SkippedItem] = {}
        self._fba_skus: set[str] | None = None

    def add(self, sku: str, quantity: int | SkippedItem) -> None:
        if self._fba_skus is None or sku in self._fba_skus:
            self._quantities[sku] = quantity

    def keep_only(self, fba_skus: set[str]) -> None:
        self._fba_skus = fba_skus
        self._quantities = {
            sku: quantity for sku, quantity in self._quantities.items() if sku in fba_skus
        }

    def quantity(self, sku: str) -> int | SkippedItem:
        return self._quantities.get(sku, 0)


class AmazonCatalog:
    """Every listing of one Amazon seller, page by page.

    `credentials` are the organization's stored Amazon credentials; `account` names the seller
    account for pacing (the organization id): syncs of one account share its rate limits.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        endpoints: AmazonEndpoints,
        pacer: Pacer,
        *,
        account: str,
        stored_enrichment: StoredEnrichment = nothing_stored,
        backoff: Backoff = MARKETPLACE_BACKOFF,
    ) -> None:
        missing = [name for name in REQUIRED_CREDENTIALS if not credentials.get(name)]
        if missing:
            raise MarketplaceError(
                AMAZON, f"The Amazon credentials have no {', '.join(missing)}: save them again"
            )
        self._marketplace_id = credentials.get("marketplace_id") or DEFAULT_MARKETPLACE_ID
        if self._marketplace_id not in CURRENCIES:
            raise MarketplaceError(
                AMAZON, f"Amazon marketplace id {self._marketplace_id!r} is not supported"
            )
        self._credentials = {name: credentials[name] for name in REQUIRED_CREDENTIALS}
        self._endpoints = endpoints
        self._stored_enrichment = stored_enrichment
        self._token_client = _token_client_class(endpoints.lwa_token_url)
        self._token_key = token_key(
            self._token_client.url(),
            self._credentials["lwa_app_id"],
            self._credentials["lwa_client_secret"],
            self._credentials["refresh_token"],
        )
        self._account = f"{AMAZON}:{account}"
        self._pacer = pacer
        self._backoff = backoff

    async def pages(self) -> AsyncGenerator[CatalogPage, None]:
        # When set, this variable overrides the marketplace (and so the endpoint) we pass.
        os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
        reports, catalog, inventories = (
            self._client(Reports),
            self._client(CatalogItems, version="2022-04-01"),
            self._client(Inventories),
        )
        fba = _FbaStock()
        reading = asyncio.create_task(self._read_fba_stock(inventories, fba))
        try:
            document = await self._finished_report(reports)
            if document is None:
                return
            with tempfile.TemporaryFile() as raw:
                encoding = await self._caller(reports).call(
                    "downloadReportDocument",
                    lambda: _translating_failures(
                        "downloadReportDocument", lambda: self._download(document, raw)
                    ),
                )
                # A pass over the whole report: too long to hold up the event loop.
                fba_skus = await asyncio.to_thread(_fba_skus, raw, document, encoding)
                if fba_skus:
                    fba.keep_only(fba_skus)
                else:
                    # Nothing needs FBA inventory, nor minds its failure: a seller without FBA
                    # may not have granted access to it.
                    reading.cancel()
                for rows in _batched(_rows(raw, document, encoding), PAGE_SIZE):
                    _raise_failure(reading)
                    yield await self._page(catalog, rows, fba, reading)
                if fba_skus:
                    # FBA inventory that failed fails the sync, even when no page needed it.
                    await reading
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            for client in (reports, catalog, inventories):
                client.close()

    def _client(self, api: Callable[..., T], **options: Any) -> T:
        return api(
            marketplace=_Marketplace(self._endpoints.sp_api, self._marketplace_id),
            refresh_token=self._credentials["refresh_token"],
            credentials=self._credentials,
            # Only these credentials: never fall back to ones in the environment or files.
            credential_providers=(FromCodeCredentialProvider,),
            auth_token_client_class=self._token_client,
            timeout=REQUEST_TIMEOUT_SECONDS,
            verify=tls_context(),
            **options,
        )

    def _caller(self, client: Client) -> Caller:
        """Calls made through the client: a refused token is the one it last handed out.

        The API clients are used at once (FBA inventory next to the report or Catalog Items):
        dropping whatever token is cached could drop the new one another client just fetched.
        """
        token_client: _LwaTokenClient = client._auth

        def drop_token() -> None:
            if token_client.handed_out is not None:
                access_tokens.drop(self._token_key, token_client.handed_out)

        return Caller(
            marketplace_label="Amazon",
            account=self._account,
            pacer=self._pacer,
            backoff=self._backoff,
            refresh_token=drop_token,
        )

    async def _call(self, client: Client, operation: str, request: Callable[[], T]) -> T:
        """A blocking sp_api request, in a worker thread; waits and retries on the loop."""
        return await self._caller(client).call(
            operation,
            lambda: _translating_failures(
                operation, lambda: _counted(operation, asyncio.to_thread(request))
            ),
        )

    async def _finished_report(self, reports: Reports) -> _ReportDocument | None:
        """Creates the listings report and waits for it; None when Amazon cancelled it."""
        created = await self._call(
            reports,
            "createReport",
            lambda: _payload(
                reports.create_report(
                    reportType=REPORT_TYPE, marketplaceIds=[self._marketplace_id]
                ),
                "reportId",
            ),
        )
        report_id = created["reportId"]
        deadline = self._pacer.clock() + REPORT_DEADLINE_SECONDS
        pauses = report_poll_pauses()
        while True:
            report = await self._call(
                reports,
                "getReport",
                lambda: _payload(reports.get_report(report_id), "processingStatus"),
            )
            status = report["processingStatus"]
            if status == "DONE":
                break
            if status == "CANCELLED":
                # Amazon cancels a report that has no data: the seller lists nothing.
                return None
            if status == "FATAL":
                raise MarketplaceError(
                    AMAZON,
                    f"Amazon report ended FATAL (report {report_id}): try again later",
                    retryable=True,
                )
            pause = next(pauses)
            if self._pacer.clock() + pause > deadline:
                raise MarketplaceError(
                    AMAZON,
                    f"Amazon did not finish report {report_id} within an hour; try again later",
                    retryable=True,
                )
            await self._pacer.sleep(pause)
        document_id = report.get("reportDocumentId")
        if not document_id:
            raise MarketplaceError(
                AMAZON,
                f"Amazon finished report {report_id} without a document",
                retryable=True,
            )
        document = await self._call(
            reports,
            "getReportDocument",
            lambda: _payload(reports.get_report_document(document_id), "url"),
        )
        return _ReportDocument(document["url"], document.get("compressionAlgorithm"))

    async def _download(self, document: _ReportDocument, raw: IO[bytes]) -> str:
        """Stores the document in `raw` and says its character encoding."""
        raw.seek(0)
        raw.truncate()
        async with (
            httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, verify=tls_context()) as client,
            client.stream("GET", document.url) as response,
        ):
            count_request(AMAZON, "downloadReportDocument", response.status_code)
            if response.status_code == 429 or response.status_code >= 500:
                raise Transient(f"failing to serve the report (HTTP {response.status_code})")
            if response.status_code != 200:
                raise MarketplaceError(
                    AMAZON, f"Amazon refused the report download (HTTP {response.status_code})"
                )
            async for chunk in response.aiter_bytes():
                raw.write(chunk)
            return _known_encoding(response.charset_encoding)

    async def _read_fba_stock(self, inventories: Inventories, fba: _FbaStock) -> None:
        """Fulfillable FBA quantity per SKU, from every page of the inventory summaries."""
        tokens = PageCursors(
            AMAZON, "Amazon kept returning the same page of FBA inventory; try again later"
        )

        def summaries(paging: dict[str, str]) -> ApiResponse:
            return _with_payload(
                inventories.get_inventory_summary_marketplace(
                    details=True, marketplaceIds=[self._marketplace_id], **paging
                ),
                "inventorySummaries",
                list,
            )

        next_token = ""
        while True:
            paging = {"nextToken": next_token} if next_token else {}
            response = await self._call(
                inventories, "getInventorySummaries", partial(summaries, paging)
            )
            for summary in _dicts(response.payload["inventorySummaries"]):
                sku = summary.get("sellerSku")
                if isinstance(sku, str):
                    fba.add(sku, _fulfillable(sku, summary.get("inventoryDetails")))
            next_token = tokens.follow(response.next_token)
            if not next_token:
                return

    async def _page(
        self,
        catalog: CatalogItems,
        rows: Iterable[_ReportRow | SkippedItem],
        fba: _FbaStock,
        reading: asyncio.Task[None],
    ) -> CatalogPage:
        page = CatalogPage()
        listings: list[_Listing] = []
        for row in rows:
            listing = row if isinstance(row, SkippedItem) else _listing(row)
            if isinstance(listing, SkippedItem):
                page.skipped.append(listing)
            else:
                listings.append(listing)
        stored = await self._stored_enrichment([listing.sku for listing in listings])
        reused = _unchanged_enrichment(listings, stored)
        enrichment = await self._enrichment(
            catalog, {listing.asin for listing in listings if listing.sku not in reused}
        )
        if any(listing.quantity is None for listing in listings):
            # Only now, enriched, does the page wait for FBA inventory to be read.
            await reading
        currency = CURRENCIES[self._marketplace_id]
        for listing in listings:
            quantity = _stock_of(listing, fba)
            if isinstance(quantity, SkippedItem):
                page.skipped.append(quantity)
                continue
            extra = reused.get(listing.sku) or enrichment.get(listing.asin, Enrichment())
            page.products.append(
                MarketplaceProduct(
                    sku=listing.sku,
                    marketplace=AMAZON,
                    title=listing.fields.get("item-name", ""),
                    description=listing.fields.get("item-description", ""),
                    brand=extra.brand,
                    category=extra.category,
                    price=listing.price,
                    currency=currency,
                    inventory_quantity=quantity,
                    image_url=extra.image_url,
                    asin=listing.asin,
                    external_id=listing.asin,
                    status=listing.fields.get("status", ""),
                )
            )
        return page

    async def _enrichment(self, catalog: CatalogItems, asins: set[str]) -> dict[str, Enrichment]:

        def items(chunk: list[str], paging: dict[str, str]) -> ApiResponse:
            return _with_payload(
                catalog.search_catalog_items(
                    identifiers=",".join(chunk),
                    identifiersType="ASIN",
                    includedData="summaries,images",
                    marketplaceIds=[self._marketplace_id],
                    pageSize=CATALOG_IDENTIFIERS_PER_CALL,
                    **paging,
                ),
                "items",
                list,
            )

        found: dict[str, Enrichment] = {}
        for chunk in _batched(sorted(asin for asin in asins if asin), CATALOG_IDENTIFIERS_PER_CALL):
            tokens = PageCursors(
                AMAZON, "Amazon kept returning the same page of catalog items; try again later"
            )
            page_token = ""
            while True:
                paging = {"pageToken": page_token} if page_token else {}
                response = await self._call(
                    catalog, "searchCatalogItems", partial(items, chunk, paging)
                )
                for item in _dicts(response.payload["items"]):
                    asin = item.get("asin")
                    if isinstance(asin, str):
                        found[asin] = self._enrichment_of(item)
                page_token = tokens.follow(response.next_token)
                if not page_token:
                    break
        return found

    def _enrichment_of(self, item: dict[str, Any]) -> Enrichment:
        # Enrichment only adds to a product: a value that is not text is left out, not fatal.
        summary = _for_marketplace(_dicts(item.get("summaries")), self._marketplace_id)
        image_sets = _for_marketplace(_dicts(item.get("images")), self._marketplace_id)
        main = next(
            (image for image in _dicts(image_sets.get("images")) if image.get("variant") == "MAIN"),
            {},
        )
        classification = summary.get("browseClassification")
        return Enrichment(
            brand=_text(summary.get("brand")),
            category=_text(
                classification.get("displayName") if isinstance(classification, dict) else None
            ),
            image_url=_text(main.get("link")),
        )


def _raise_failure(task: asyncio.Task[None]) -> None:
    """Raises what the task failed with, once it has: the sync fails as soon as a part does."""
    if task.done() and not task.cancelled() and (failure := task.exception()) is not None:
        raise failure


def report_poll_pauses() -> Iterator[float]:
    """The pauses between polls of a report, growing to one every 30 seconds."""
    yield from REPORT_POLL_PAUSES_SECONDS
    yield from repeat(REPORT_POLL_LONGEST_PAUSE_SECONDS)


def _unchanged_enrichment(
    listings: list[_Listing], stored: Mapping[str, tuple[str, Enrichment]]
) -> dict[str, Enrichment]:
    """What was stored for the SKUs whose ASIN is still the same, by SKU."""
    reusable = {}
    for listing in listings:
        asin, enrichment = stored.get(listing.sku, ("", Enrichment()))
        if enrichment and asin == listing.asin:
            reusable[listing.sku] = enrichment
    return reusable


def _known_encoding(charset: str | None) -> str:
    # Amazon serves North American reports in cp1252 without saying so.
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "cp1252"


def _rows(
    raw: IO[bytes], document: _ReportDocument, encoding: str
) -> Iterator[_ReportRow | SkippedItem]:
    """The report's rows by column name (columns vary by account and move around), and a
    skipped item for each line that cannot be read."""
    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw) if document.compression == "GZIP" else raw
    # cp1252 leaves five bytes undefined: one in a title costs a character, not the sync.
    text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
    try:
        # Amazon does not quote fields, and descriptions carry bare quotes (12" ruler).
        reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise MarketplaceError(
                AMAZON, f"Amazon's listings report has no {', '.join(missing)} column"
            )
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # The reader goes on with the next line.
                yield SkippedItem(
                    "", f"Line {reader.line_num} of Amazon's listings report is unreadable: {error}"
                )
                continue
            if values:
                yield _ReportRow(reader.line_num, dict(zip(header, values, strict=False)))
    except (OSError, EOFError, zlib.error) as error:
        raise MarketplaceError(
            AMAZON,
            f"Amazon's listings report arrived damaged ({error}); try again later",
            retryable=True,
        ) from error
    finally:
        text.detach()


def _fba_skus(raw: IO[bytes], document: _ReportDocument, encoding: str) -> set[str]:
    return {
        row.fields["seller-sku"]
        for row in _rows(raw, document, encoding)
        if isinstance(row, _ReportRow) and row.fields.get("seller-sku") and _is_fba(row)
    }


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _for_marketplace(entries: list[dict[str, Any]], marketplace_id: str) -> dict[str, Any]:
    return next(
        (entry for entry in entries if entry.get("marketplaceId") == marketplace_id),
        entries[0] if entries else {},
    )


def _dicts(value: object) -> list[dict[str, Any]]:
    """The objects in a list from an answer; anything else in it, or in its place, is no data."""
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _is_fba(row: _ReportRow) -> bool:
    return row.fields.get("fulfillment-channel", MERCHANT_FULFILLED) not in (
        "",
        MERCHANT_FULFILLED,
    )


def _listing(row: _ReportRow) -> _Listing | SkippedItem:
    sku = row.fields.get("seller-sku", "")
    if not sku:
        return SkippedItem("", f"Line {row.line} of Amazon's listings report has no seller-sku")
    raw_price = row.fields.get("price")
    if raw_price is None:
        return SkippedItem(
            sku, f"Line {row.line} of Amazon's listings report ends before the price column"
        )
    price = _price(sku, raw_price.strip())
    if isinstance(price, SkippedItem):
        return price
    if _is_fba(row):
        return _Listing(sku, row.fields, price, None)
    quantity = _quantity(sku, row)
    if isinstance(quantity, SkippedItem):
        return quantity
    return _Listing(sku, row.fields, price, quantity)


def _stock_of(listing: _Listing, fba: _FbaStock) -> int | SkippedItem:
    return fba.quantity(listing.sku) if listing.quantity is None else listing.quantity


def _price(sku: str, raw_price: str) -> Decimal | SkippedItem:
    try:
        price = Decimal(raw_price)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price.is_signed():
        return SkippedItem(
            sku, f"Amazon's report gives the price {shown(raw_price)}, not an amount"
        )
    cents = to_cents(price)
    if cents is None:
        return SkippedItem(
            sku,
            f"Amazon's report gives the price {shown(raw_price)} with more than 2 decimal "
            "places; prices are kept to the cent, so correct it in Seller Central",
        )
    return cents


def _quantity(sku: str, row: _ReportRow) -> int | SkippedItem:
    raw_quantity = row.fields.get("quantity", "").strip()
    if not raw_quantity:
        return 0
    quantity = parse_quantity(raw_quantity)
    if quantity is None:
        return SkippedItem(
            sku,
            f"Amazon's report gives the quantity {shown(raw_quantity)}, not a whole number "
            f"from 0 to {MAX_QUANTITY}",
        )
    return quantity


def _fulfillable(sku: str, details: object) -> int | SkippedItem:
    raw = details.get("fulfillableQuantity") if isinstance(details, dict) else None
    quantity = 0 if raw is None else parse_quantity(raw)
    if quantity is None:
        return SkippedItem(
            sku,
            f"Amazon's FBA inventory gives the fulfillable quantity {shown(raw)}, not a whole "
            f"number from 0 to {MAX_QUANTITY}",
        )
    return quantity


def _with_payload(response: ApiResponse, key: str, kind: type = object) -> ApiResponse:
    """The answer, if it carries `key` as a `kind`: sp_api turns an empty-bodied error into an
    empty answer."""
    value = response.payload.get(key) if isinstance(response.payload, dict) else None
    if value is None or not isinstance(value, kind):
        raise Transient(NO_DATA)
    return response


def _payload(response: ApiResponse, key: str) -> dict[str, Any]:
    payload: dict[str, Any] = _with_payload(response, key).payload
    return payload


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


async def _translating_failures(operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Runs one attempt, turning the library's and transport's failures into our outcomes."""
    try:
        return await attempt()
    except AuthorizationError as error:
        raise _authorization_failure(error) from error
    except SellingApiException as error:
        raise _api_failure(operation, error) from error
    except json.JSONDecodeError as error:
        # sp_api parses the token answer as JSON without looking at its status first.
        raise Transient("answering token requests without data") from error
    except httpx.TransportError as error:
        raise Transient(f"dropping the connection ({type(error).__name__})") from error


def _authorization_failure(error: AuthorizationError) -> Exception:
    if error.error_code == "invalid_grant":
        return MarketplaceError(
            AMAZON,
            "Amazon rejected the refresh token (invalid_grant): reconnect your Amazon account",
        )
    if error.error_code == "invalid_client":
        return MarketplaceError(
            AMAZON,
            "Amazon rejected the LWA client id or secret (invalid_client): "
            "check lwa_app_id and lwa_client_secret",
        )
    if error.status_code == 429 or error.status_code >= 500:
        return Transient(f"failing to issue access tokens (HTTP {error.status_code})")
    return MarketplaceError(
        AMAZON, f"Amazon refused an access token ({error.error_code}): {error.message}"
    )


def _api_failure(operation: str, error: SellingApiException) -> Exception:
    first = error.error[0] if error.error else {}
    code, message = first.get("code", ""), first.get("message", "")
    details = first.get("details", "")
    if error.code == 429:
        return Transient("throttling")
    if error.code == 403 and "access token" in f"{message} {details}".lower():
        return TokenRejected(details or message)
    if error.code == 403:
        return MarketplaceError(
            AMAZON,
            f"Amazon denied {operation} ({code}: {message}): check that the seller has "
            "authorized this app",
        )
    if error.code in (400, 404, 409, 413, 415):
        return MarketplaceError(AMAZON, f"Amazon refused {operation} ({code}: {message})")
    return Transient(f"failing ({code or 'server error'}: {message})")
