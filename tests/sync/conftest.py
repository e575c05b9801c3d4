"""What a client should read from the sandbox marketplace (tests/conftest.py starts it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

import httpx
import pytest

from dev.sandbox import SandboxHandle
from dev.sandbox.catalogue import amazon_catalogue, walmart_catalogue
from marketsync.backoff import Backoff
from services.sync.marketplaces import (
    DEFAULT_RATES,
    AmazonEndpoints,
    CatalogPage,
    MarketplaceProduct,
    Pacer,
    Rate,
    SkippedItem,
    WalmartEndpoints,
)

# Fast enough that runs take seconds, slow enough that backoff really happens in between.
FAST_BACKOFF = Backoff(base_seconds=0.002, cap_seconds=0.02, jitter=0.5, attempts=6)


async def shortened_sleep(seconds: float) -> None:
    # Report polling pauses 0.5 s, then 1 s: a hundredth keeps every Amazon test fast.
    await asyncio.sleep(seconds / 100)


@pytest.fixture
def pacer() -> Pacer:
    return Pacer(
        {operation: Rate(1000, 1000) for operation in DEFAULT_RATES}, sleep=shortened_sleep
    )


@pytest.fixture
def amazon_endpoints(sandbox: SandboxHandle) -> AmazonEndpoints:
    return AmazonEndpoints(sp_api=sandbox.url, lwa_token_url=f"{sandbox.url}/auth/o2/token")


@pytest.fixture
def walmart_endpoints(sandbox: SandboxHandle) -> WalmartEndpoints:
    return WalmartEndpoints(base_url=sandbox.url)


def unique_account(label: str, size: int) -> str:
    """A fresh sandbox account (its own catalogue and fault switches) of `size` products."""
    return f"{label}-{uuid.uuid4().hex[:8]}-{size}"


def set_faults(sandbox: SandboxHandle, account: str, **switches: object) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"account": account, **switches})
    answer.raise_for_status()


def call_counts(sandbox: SandboxHandle, account: str) -> dict[str, int]:
    answer = httpx.get(f"{sandbox.url}/_sandbox/stats", params={"account": account})
    answer.raise_for_status()
    calls: dict[str, int] = answer.json()["calls"]
    return calls


def timeline(sandbox: SandboxHandle, account: str) -> list[tuple[str, float]]:
    """The account's calls in the order the sandbox got them, each with its time.monotonic()."""
    answer = httpx.get(f"{sandbox.url}/_sandbox/stats", params={"account": account})
    answer.raise_for_status()
    return [(operation, at) for operation, at in answer.json()["timeline"]]


def read(pages: AsyncIterator[CatalogPage]) -> list[CatalogPage]:
    """Every page, driven by an event loop of its own."""

    async def read_all() -> list[CatalogPage]:
        return [page async for page in pages]

    return asyncio.run(read_all())


def collect(
    pages: AsyncIterator[CatalogPage],
) -> tuple[dict[str, MarketplaceProduct], list[SkippedItem]]:
    return joined(read(pages))


def joined(
    pages: Iterable[CatalogPage],
) -> tuple[dict[str, MarketplaceProduct], list[SkippedItem]]:
    products: dict[str, MarketplaceProduct] = {}
    skipped: list[SkippedItem] = []
    for page in pages:
        for product in page.products:
            assert product.sku not in products, f"{product.sku} arrived twice"
            products[product.sku] = product
        skipped.extend(page.skipped)
    return products, skipped


def expected_amazon(refresh_token: str) -> dict[str, MarketplaceProduct]:
    """What the sandbox's Amazon knows about each listing, as a synced product."""
    return {
        listing.sku: MarketplaceProduct(
            sku=listing.sku,
            marketplace="amazon",
            title=listing.title,
            description=listing.description,
            brand=listing.brand or "",
            category=listing.category or "",
            price=Decimal(listing.price),
            currency="USD",
            inventory_quantity=listing.fulfillable_quantity if listing.is_fba else listing.quantity,
            image_url=listing.main_image or "",
            asin=listing.asin,
            external_id=listing.asin,
            status=listing.status,
        )
        for listing in amazon_catalogue(refresh_token)
    }


def expected_walmart(client_id: str) -> dict[str, MarketplaceProduct]:
    """What the sandbox's Walmart knows about each item, as a synced product."""
    return {
        item.sku: MarketplaceProduct(
            sku=item.sku,
            marketplace="walmart",
            title=item.product_name,
            description="",
            brand="",
            category=item.product_type,
            price=item.price,
            currency=item.currency,
            inventory_quantity=item.available_to_sell,
            image_url="",
            asin="",
            external_id=item.wpid,
            status=item.published_status,
        )
        for item in walmart_catalogue(client_id)
    }
