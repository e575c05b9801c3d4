"""Clients that read a seller's whole catalogue from a marketplace, page by page.

`AmazonCatalog(...).pages()` and `WalmartCatalog(...).pages()` are async iterators of
`CatalogPage`s (each a bounded list of products plus the items that had to be skipped). Every
wait is awaited on the event loop, so a sync that waits holds no thread. Iterate one inside
`contextlib.aclosing`: stopping early or being cancelled then cancels and awaits everything it
started. Failures that end a sync raise `MarketplaceError`, whose message is for the seller and
whose `retryable` says whether the same sync started again later may succeed.
"""

from __future__ import annotations

from marketsync.marketplaces import AMAZON, WALMART
from services.sync.marketplaces.amazon.client import AmazonCatalog
from services.sync.marketplaces.pacing import (
    AMAZON_RATES,
    DEFAULT_RATES,
    WALMART_RATES,
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

__all__ = [
    "AMAZON",
    "AMAZON_RATES",
    "DEFAULT_RATES",
    "WALMART",
    "WALMART_RATES",
    "AmazonCatalog",
    "AmazonEndpoints",
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
]
