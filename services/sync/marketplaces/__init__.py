"""Clients that read a seller's whole catalogue from a marketplace, page by page.

`AmazonCatalog(...).pages()` and `WalmartCatalog(...).pages()` are blocking iterators of
`CatalogPage`s (each a bounded list of products plus the items that had to be skipped); an
asyncio caller drives one from a worker thread with `pages_in_thread`. Failures that end a
sync raise `MarketplaceError`, whose message is for the seller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar, cast

from marketsync.marketplaces import AMAZON, WALMART
from services.sync.marketplaces.amazon import AmazonCatalog
from services.sync.marketplaces.pacing import (
    AMAZON_RATES,
    DEFAULT_RATES,
    WALMART_RATES,
    Backoff,
    Pacer,
    Rate,
)
from services.sync.marketplaces.records import (
    AmazonEndpoints,
    CatalogPage,
    Enrichment,
    MarketplaceError,
    MarketplaceProduct,
    SkippedItem,
    StoredEnrichment,
    WalmartEndpoints,
)
from services.sync.marketplaces.walmart import WalmartCatalog

T = TypeVar("T")

__all__ = [
    "AMAZON",
    "AMAZON_RATES",
    "DEFAULT_RATES",
    "WALMART",
    "WALMART_RATES",
    "AmazonCatalog",
    "AmazonEndpoints",
    "Backoff",
    "CatalogPage",
    "Enrichment",
    "MarketplaceError",
    "MarketplaceProduct",
    "Pacer",
    "Rate",
    "SkippedItem",
    "StoredEnrichment",
    "WalmartCatalog",
    "WalmartEndpoints",
    "pages_in_thread",
]

_EXHAUSTED = object()


async def pages_in_thread(pages: Iterator[T]) -> AsyncIterator[T]:
    """Drives a blocking iterator from a worker thread, one item at a time, for asyncio code.

    Cancelled while the worker is inside the iterator, it leaves the iterator to finish that
    step and be collected: closing a generator that is running raises instead.
    """
    in_worker = False
    try:
        while True:
            in_worker = True
            item = await asyncio.to_thread(next, pages, _EXHAUSTED)
            in_worker = False
            if item is _EXHAUSTED:
                return
            yield cast(T, item)
    finally:
        close = getattr(pages, "close", None)
        if close is not None and not in_worker:
            await asyncio.to_thread(close)
