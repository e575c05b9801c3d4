"""An Amazon seller's whole catalogue, through SP-API (python-amazon-sp-api).

The listings report (GET_MERCHANT_LISTINGS_ALL_DATA) is the complete catalogue in one gzip
TSV. It is downloaded to a temporary file, then read in pages: each page gets the FBA stock of
its FBA listings and is enriched with brand, category and main image from Catalog Items, 20
ASINs a call, so a sync holds one page at a time, never the catalogue.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import islice
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from sp_api.api import CatalogItems, Inventories, Reports
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, SellingApiException
from sp_api.base.credential_provider import FromCodeCredentialProvider

from services.sync.marketplaces.pacing import Backoff, Caller, Pacer, TokenRejected, Transient
from services.sync.marketplaces.records import (
    AMAZON,
    AmazonEndpoints,
    CatalogPage,
    Enrichment,
    MarketplaceError,
    MarketplaceProduct,
    SkippedItem,
    StoredEnrichment,
    nothing_stored,
)

T = TypeVar("T")

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
DEFAULT_MARKETPLACE_ID = "ATVPDKIKX0DER"
PAGE_SIZE = 100
CATALOG_IDENTIFIERS_PER_CALL = 20
REPORT_DEADLINE_SECONDS = 3600.0
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
                self._tokens[key] = (token, self._clock() + lifetime - TOKEN_RENEWAL_MARGIN_SECONDS)
            return token

    def drop(self, key: tuple[str, str, str]) -> None:
        with self._guard:
            self._tokens.pop(key, None)


access_tokens = AccessTokenCache()


class _LwaTokenClient(AccessTokenClient):
    """sp_api's token client, pointed at the configured LWA URL and using `access_tokens`."""

    @classmethod
    def url(cls) -> str:
        return cls.scheme + cls.host + cls.path

    def get_auth(self) -> AccessTokenResponse:
        key = (self.url(), self.cred.client_id, self.cred.refresh_token)
        token = access_tokens.get(key, lambda: self._request(self.url(), self.data, self.headers))
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
        backoff: Backoff = Backoff(),  # noqa: B008 - immutable
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
        self._caller = Caller(
            marketplace_label="Amazon",
            account=f"{AMAZON}:{account}",
            pacer=pacer,
            backoff=backoff,
            refresh_token=self._drop_access_token,
        )

    def pages(self) -> Iterator[CatalogPage]:
        # When set, this variable overrides the marketplace (and so the endpoint) we pass.
        os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
        reports, catalog, inventories = (
            self._client(Reports),
            self._client(CatalogItems, version="2022-04-01"),
            self._client(Inventories),
        )
        try:
            document = self._finished_report(reports)
            if document is None:
                return
            with tempfile.TemporaryFile() as raw:
                encoding = self._call(
                    "downloadReportDocument", lambda: self._download(document, raw)
                )
                fba_skus = {
                    row["seller-sku"] for row in _rows(raw, document, encoding) if _is_fba(row)
                }
                fba_stock = self._fba_stock(inventories, fba_skus) if fba_skus else {}
                for rows in _batched(_rows(raw, document, encoding), PAGE_SIZE):
                    yield self._page(catalog, rows, fba_stock)
        finally:
            for client in (reports, catalog, inventories):
                client.close()

    def _client(self, api: type[T], **options: Any) -> T:
        return api(
            marketplace=_Marketplace(self._endpoints.sp_api, self._marketplace_id),
            refresh_token=self._credentials["refresh_token"],
            credentials=self._credentials,
            # Only these credentials: never fall back to ones in the environment or files.
            credential_providers=(FromCodeCredentialProvider,),
            auth_token_client_class=self._token_client,
            timeout=REQUEST_TIMEOUT_SECONDS,
            **options,
        )

    def _drop_access_token(self) -> None:
        credentials = self._credentials
        access_tokens.drop(
            (self._token_client.url(), credentials["lwa_app_id"], credentials["refresh_token"])
        )

    def _call(self, operation: str, attempt: Callable[[], T]) -> T:
        return self._caller.call(operation, lambda: _translating_failures(operation, attempt))

    def _finished_report(self, reports: Reports) -> _ReportDocument | None:
        """Creates the listings report and waits for it; None when Amazon cancelled it."""
        created = self._call(
            "createReport",
            lambda: _payload(
                reports.create_report(
                    reportType=REPORT_TYPE, marketplaceIds=[self._marketplace_id]
                ),
                "reportId",
            ),
        )
        report_id = created["reportId"]
        clock = self._caller.pacer.clock
        deadline = clock() + REPORT_DEADLINE_SECONDS
        while True:
            report = self._call(
                "getReport", lambda: _payload(reports.get_report(report_id), "processingStatus")
            )
            status = report["processingStatus"]
            if status == "DONE":
                break
            if status == "CANCELLED":
                # Amazon cancels a report that has no data: the seller lists nothing.
                return None
            if status == "FATAL":
                raise MarketplaceError(
                    AMAZON, f"Amazon report ended FATAL (report {report_id}): try again later"
                )
            if clock() > deadline:
                raise MarketplaceError(
                    AMAZON, f"Amazon did not finish report {report_id} within an hour"
                )
        document_id = report.get("reportDocumentId")
        if not document_id:
            raise MarketplaceError(AMAZON, f"Amazon finished report {report_id} without a document")
        document = self._call(
            "getReportDocument",
            lambda: _payload(reports.get_report_document(document_id), "url"),
        )
        return _ReportDocument(document["url"], document.get("compressionAlgorithm"))

    def _download(self, document: _ReportDocument, raw: IO[bytes]) -> str:
        """Stores the document in `raw` and says its character encoding."""
        raw.seek(0)
        raw.truncate()
        with (
            httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS) as client,
            client.stream("GET", document.url) as response,
        ):
            if response.status_code == 429 or response.status_code >= 500:
                raise Transient(f"failing to serve the report (HTTP {response.status_code})")
            if response.status_code != 200:
                raise MarketplaceError(
                    AMAZON, f"Amazon refused the report download (HTTP {response.status_code})"
                )
            for chunk in response.iter_bytes():
                raw.write(chunk)
            # Amazon serves North American reports in cp1252 without saying so.
            return response.charset_encoding or "cp1252"

    def _fba_stock(self, inventories: Inventories, fba_skus: set[str]) -> dict[str, int]:
        """Fulfillable FBA quantity per SKU, from every page of the inventory summaries."""
        stock: dict[str, int] = {}
        next_token: str | None = None
        while True:
            paging = {"nextToken": next_token} if next_token else {}
            response = self._call(
                "getInventorySummaries",
                lambda paging=paging: _with_payload(
                    inventories.get_inventory_summary_marketplace(
                        details=True, marketplaceIds=[self._marketplace_id], **paging
                    ),
                    "inventorySummaries",
                ),
            )
            for summary in response.payload["inventorySummaries"]:
                sku = summary.get("sellerSku")
                if sku in fba_skus:
                    details = summary.get("inventoryDetails") or {}
                    stock[sku] = int(details.get("fulfillableQuantity") or 0)
            next_token = response.next_token
            if not next_token:
                return stock

    def _page(
        self, catalog: CatalogItems, rows: Iterable[dict[str, str]], fba_stock: dict[str, int]
    ) -> CatalogPage:
        page = CatalogPage()
        listed: list[tuple[dict[str, str], Decimal, int]] = []
        for row in rows:
            parsed = _price_and_quantity(row, fba_stock)
            if isinstance(parsed, SkippedItem):
                page.skipped.append(parsed)
            else:
                listed.append((row, *parsed))
        rows_listed = [row for row, _, _ in listed]
        reused = _unchanged_enrichment(
            rows_listed, self._stored_enrichment([row["seller-sku"] for row in rows_listed])
        )
        enrichment = self._enrichment(
            catalog,
            {row.get("asin1", "") for row, _, _ in listed if row["seller-sku"] not in reused},
        )
        currency = CURRENCIES[self._marketplace_id]
        for row, price, quantity in listed:
            asin = row.get("asin1", "")
            extra = reused.get(row["seller-sku"]) or enrichment.get(asin, Enrichment())
            page.products.append(
                MarketplaceProduct(
                    sku=row["seller-sku"],
                    marketplace=AMAZON,
                    title=row.get("item-name", ""),
                    description=row.get("item-description", ""),
                    brand=extra.brand,
                    category=extra.category,
                    price=price,
                    currency=currency,
                    inventory_quantity=quantity,
                    image_url=extra.image_url,
                    asin=asin,
                    external_id=asin,
                    status=row.get("status", ""),
                )
            )
        return page

    def _enrichment(self, catalog: CatalogItems, asins: set[str]) -> dict[str, Enrichment]:
        found: dict[str, Enrichment] = {}
        for chunk in _batched(sorted(asin for asin in asins if asin), CATALOG_IDENTIFIERS_PER_CALL):
            page_token: str | None = None
            while True:
                paging = {"pageToken": page_token} if page_token else {}
                response = self._call(
                    "searchCatalogItems",
                    lambda chunk=chunk, paging=paging: _with_payload(
                        catalog.search_catalog_items(
                            identifiers=",".join(chunk),
                            identifiersType="ASIN",
                            includedData="summaries,images",
                            marketplaceIds=[self._marketplace_id],
                            pageSize=CATALOG_IDENTIFIERS_PER_CALL,
                            **paging,
                        ),
                        "items",
                    ),
                )
                for item in response.payload["items"]:
                    found[item.get("asin", "")] = self._enrichment_of(item)
                page_token = response.next_token
                if not page_token:
                    break
        return found

    def _enrichment_of(self, item: dict[str, Any]) -> Enrichment:
        summary = _for_marketplace(item.get("summaries") or [], self._marketplace_id) or {}
        image_sets = _for_marketplace(item.get("images") or [], self._marketplace_id) or {}
        main = next(
            (image for image in image_sets.get("images", []) if image.get("variant") == "MAIN"),
            {},
        )
        return Enrichment(
            brand=summary.get("brand", ""),
            category=(summary.get("browseClassification") or {}).get("displayName", ""),
            image_url=main.get("link", ""),
        )


def _unchanged_enrichment(
    rows: list[dict[str, str]], stored: Mapping[str, tuple[str, Enrichment]]
) -> dict[str, Enrichment]:
    """What was stored for the SKUs whose ASIN is still the same, by SKU."""
    reusable = {}
    for row in rows:
        asin, enrichment = stored.get(row["seller-sku"], ("", Enrichment()))
        if enrichment and asin == row.get("asin1", ""):
            reusable[row["seller-sku"]] = enrichment
    return reusable


def _rows(raw: IO[bytes], document: _ReportDocument, encoding: str) -> Iterator[dict[str, str]]:
    """The report's rows by column name: columns vary by account and move around."""
    raw.seek(0)
    binary: IO[bytes] = gzip.GzipFile(fileobj=raw) if document.compression == "GZIP" else raw
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
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
        for values in reader:
            if values:
                yield dict(zip(header, values, strict=False))
    finally:
        text.detach()


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _for_marketplace(entries: list[dict[str, Any]], marketplace_id: str) -> dict[str, Any] | None:
    return next(
        (entry for entry in entries if entry.get("marketplaceId") == marketplace_id),
        entries[0] if entries else None,
    )


def _is_fba(row: dict[str, str]) -> bool:
    return row.get("fulfillment-channel", MERCHANT_FULFILLED) not in ("", MERCHANT_FULFILLED)


def _price_and_quantity(
    row: dict[str, str], fba_stock: dict[str, int]
) -> tuple[Decimal, int] | SkippedItem:
    sku = row["seller-sku"]
    raw_price = row["price"].strip()
    try:
        price = Decimal(raw_price)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price < 0:
        return SkippedItem(sku, f"Amazon's report gives the price {raw_price!r}, not an amount")
    if _is_fba(row):
        return price, fba_stock.get(sku, 0)
    raw_quantity = row.get("quantity", "").strip()
    if not raw_quantity:
        return price, 0
    if not raw_quantity.isdigit():
        return SkippedItem(sku, f"Amazon's report gives the quantity {raw_quantity!r}")
    return price, int(raw_quantity)


def _with_payload(response: ApiResponse, key: str) -> ApiResponse:
    """The answer, if it carries `key`: sp_api turns an empty-bodied error into an empty answer."""
    if not isinstance(response.payload, dict) or response.payload.get(key) is None:
        raise Transient(NO_DATA)
    return response


def _payload(response: ApiResponse, key: str) -> dict[str, Any]:
    return _with_payload(response, key).payload


def _translating_failures(operation: str, attempt: Callable[[], T]) -> T:
    """Runs one attempt, turning the library's and transport's failures into our outcomes."""
    try:
        return attempt()
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
