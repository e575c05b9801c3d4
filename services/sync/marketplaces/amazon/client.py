"""`AmazonCatalog`, which ties the parts together: it builds the sp_api clients for a seller,
runs FBA inventory beside the report, and turns each page of report rows into products."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, TypeVar

from sp_api.api import CatalogItems, Inventories, Reports
from sp_api.base import Client
from sp_api.base.credential_provider import FromCodeCredentialProvider

from marketsync.backoff import Backoff
from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.calls import REQUEST_TIMEOUT_SECONDS
from services.sync.marketplaces.amazon.enrichment import catalog_enrichment, unchanged_enrichment
from services.sync.marketplaces.amazon.inventory import FbaStock, read_fba_stock, stock_of
from services.sync.marketplaces.amazon.mapping import (
    CURRENCIES,
    Listing,
    listing_of,
    product_of,
    survey,
)
from services.sync.marketplaces.amazon.reports import download, finished_report
from services.sync.marketplaces.amazon.tokens import (
    LwaTokenClient,
    access_tokens,
    token_client_class,
    token_key,
)
from services.sync.marketplaces.amazon.tsv import ReportRow, rows
from services.sync.marketplaces.pacing import MARKETPLACE_BACKOFF, Caller, Pacer
from services.sync.marketplaces.records import (
    AmazonEndpoints,
    CatalogPage,
    Enrichment,
    MarketplaceError,
    SkippedItem,
    StoredEnrichment,
    nothing_stored,
    require_credentials,
    tls_context,
)

T = TypeVar("T")

DEFAULT_MARKETPLACE_ID = "ATVPDKIKX0DER"
PAGE_SIZE = 100
REQUIRED_CREDENTIALS = ("refresh_token", "lwa_app_id", "lwa_client_secret")


@dataclass(frozen=True)
class _Marketplace:
    """What sp_api reads from a marketplace: the SP-API endpoint comes from operator settings."""

    endpoint: str
    marketplace_id: str
    region: str = "us-east-1"


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
        require_credentials(AMAZON, credentials, REQUIRED_CREDENTIALS)
        self._marketplace_id = credentials.get("marketplace_id") or DEFAULT_MARKETPLACE_ID
        if self._marketplace_id not in CURRENCIES:
            raise MarketplaceError(
                AMAZON, f"Amazon marketplace id {self._marketplace_id!r} is not supported"
            )
        self._credentials = {name: credentials[name] for name in REQUIRED_CREDENTIALS}
        self._endpoints = endpoints
        self._stored_enrichment = stored_enrichment
        self._token_client = token_client_class(endpoints.lwa_token_url)
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
        fba = FbaStock()
        reading = asyncio.create_task(
            read_fba_stock(inventories, self._caller(inventories), self._marketplace_id, fba)
        )
        try:
            document = await finished_report(reports, self._caller(reports), self._marketplace_id)
            if document is None:
                return
            with tempfile.TemporaryFile() as raw:
                encoding = await download(self._caller(reports), document, raw)
                # A pass over the whole report: too long to hold up the event loop.
                report = await asyncio.to_thread(survey, raw, document, encoding)
                if report.fba_skus:
                    fba.keep_only(report.fba_skus)
                else:
                    # Nothing needs FBA inventory, nor minds its failure: a seller without FBA
                    # may not have granted access to it.
                    reading.cancel()
                if not report.rows:
                    # An empty catalogue has a size all the same: 0.
                    yield CatalogPage(items_total=0)
                for page_rows in _batched(rows(raw, document, encoding), PAGE_SIZE):
                    _raise_failure(reading)
                    page = await self._page(catalog, page_rows, fba, reading)
                    yield replace(page, items_total=report.rows)
                if report.fba_skus:
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
        token_client: LwaTokenClient = client._auth

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

    async def _page(
        self,
        catalog: CatalogItems,
        page_rows: Iterable[ReportRow | SkippedItem],
        fba: FbaStock,
        reading: asyncio.Task[None],
    ) -> CatalogPage:
        page = CatalogPage()
        listings: list[Listing] = []
        for row in page_rows:
            listing = row if isinstance(row, SkippedItem) else listing_of(row)
            if isinstance(listing, SkippedItem):
                page.skipped.append(listing)
            else:
                listings.append(listing)
        stored = await self._stored_enrichment([listing.sku for listing in listings])
        reused = unchanged_enrichment(listings, stored)
        enrichment = await catalog_enrichment(
            catalog,
            self._caller(catalog),
            self._marketplace_id,
            {listing.asin for listing in listings if listing.sku not in reused},
        )
        if any(listing.quantity is None for listing in listings):
            # Only now, enriched, does the page wait for FBA inventory to be read.
            await reading
        currency = CURRENCIES[self._marketplace_id]
        for listing in listings:
            quantity = stock_of(listing, fba)
            if isinstance(quantity, SkippedItem):
                page.skipped.append(quantity)
                continue
            extra = reused.get(listing.sku) or enrichment.get(listing.asin, Enrichment())
            page.products.append(product_of(listing, quantity, extra, currency))
        return page


def _raise_failure(task: asyncio.Task[None]) -> None:
    """Raises what the task failed with, once it has: the sync fails as soon as a part does."""
    if task.done() and not task.cancelled() and (failure := task.exception()) is not None:
        raise failure


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
