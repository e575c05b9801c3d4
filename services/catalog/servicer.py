"""Translation between the catalog protos and the product store. No rules live here.

The store is synchronous boto3, so every call runs in a worker thread and the event loop keeps
serving other RPCs meanwhile. Single-product writes of one product take turns (see
`CatalogServicer.UpsertProduct`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from grpc import aio

from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.convert import to_timestamp
from marketsync.errors import InvalidArgument
from marketsync.identity import current_identity
from marketsync.marketplaces import MARKETPLACES
from services.catalog.capacity import Units, tally_units
from services.catalog.domain import (
    MAX_BATCH_SIZE,
    BatchResult,
    Listing,
    Product,
    ProductInput,
    format_price,
    parse_price,
    validate_page_size,
)
from services.catalog.locks import KeyedLocks
from services.catalog.store import ProductStore

DEFAULT_PAGE_SIZE = 50
NAMED_SYNC_FAILURES = 100


def product_input(sku: str, product: catalog_pb2.Product, marketplace: str = "") -> ProductInput:
    """A write from a client (marketplace empty) or from a marketplace's sync."""
    listing = product.listings[0] if marketplace and product.listings else None
    return ProductInput(
        sku=sku,
        marketplace=marketplace,
        title=product.title,
        description=product.description,
        brand=product.brand,
        category=product.category,
        price=parse_price(product.price),
        currency=product.currency,
        inventory_quantity=product.inventory_quantity,
        image_url=product.image_url,
        asin=product.asin,
        external_id=listing.external_id if listing else "",
        listing_status=listing.status if listing else "",
    )


def _listing_message(listing: Listing) -> catalog_pb2.Listing:
    return catalog_pb2.Listing(
        marketplace=listing.marketplace,
        price=format_price(listing.price),
        currency=listing.currency,
        inventory_quantity=listing.inventory_quantity,
        external_id=listing.external_id,
        status=listing.status,
        synced_at=to_timestamp(listing.synced_at),
    )


def product_message(product: Product) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        sku=product.sku,
        marketplace=product.marketplace,
        title=product.title,
        description=product.description,
        brand=product.brand,
        category=product.category,
        price=format_price(product.price),
        currency=product.currency,
        inventory_quantity=product.inventory_quantity,
        image_url=product.image_url,
        asin=product.asin,
        created_at=to_timestamp(product.created_at),
        updated_at=to_timestamp(product.updated_at),
        synced_at=to_timestamp(product.synced_at),
        listings=[_listing_message(listing) for listing in product.listings],
    )


def _product_inputs(
    products: Iterable[catalog_pb2.Product], marketplace: str = ""
) -> tuple[list[ProductInput], list[tuple[str, str]]]:
    """The writes of a batch, and the SKUs refused with why.

    A SKU's last occurrence wins before any is translated: an earlier bad copy must not fail
    the SKU, nor may a later bad copy leave an earlier good one to be stored.
    """
    latest = {product.sku: product for product in products}
    writes, failed = [], []
    for sku, product in latest.items():
        try:
            writes.append(product_input(sku, product, marketplace))
        except InvalidArgument as exc:
            failed.append((sku, exc.message))
    return writes, failed


def _failed(failed: list[tuple[str, str]]) -> list[catalog_pb2.FailedProduct]:
    return [catalog_pb2.FailedProduct(sku=sku, message=message) for sku, message in failed]


def _batch_answer(
    refused: list[tuple[str, str]], result: BatchResult, units: Units
) -> catalog_pb2.WriteSyncedProductsResponse:
    failed = [*refused, *result.failed]
    return catalog_pb2.WriteSyncedProductsResponse(
        written=result.upserted,
        unchanged=result.unchanged,
        # A batch of bad items must not outgrow its answer: name the first ones only.
        failed=_failed(failed[:NAMED_SYNC_FAILURES]),
        failed_count=len(failed),
        read_units=units.read,
        write_units=units.write,
    )


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, store: ProductStore) -> None:
        self._store = store
        self._writing = KeyedLocks()

    async def ListProducts(
        self,
        request: catalog_pb2.ListProductsRequest,
        context: aio.ServicerContext[
            catalog_pb2.ListProductsRequest, catalog_pb2.ListProductsResponse
        ],
    ) -> catalog_pb2.ListProductsResponse:
        identity = current_identity()
        page_size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
        validate_page_size(page_size)
        page = await asyncio.to_thread(
            self._store.list_page,
            identity.organization_id,
            page_size,
            request.page_token,
            request.marketplace,
        )
        return catalog_pb2.ListProductsResponse(
            products=[product_message(p) for p in page.products],
            next_page_token=page.next_page_token,
        )

    async def GetProduct(
        self,
        request: catalog_pb2.GetProductRequest,
        context: aio.ServicerContext[catalog_pb2.GetProductRequest, catalog_pb2.Product],
    ) -> catalog_pb2.Product:
        identity = current_identity()
        product = await asyncio.to_thread(self._store.get, identity.organization_id, request.sku)
        return product_message(product)

    async def UpsertProduct(
        self,
        request: catalog_pb2.UpsertProductRequest,
        context: aio.ServicerContext[catalog_pb2.UpsertProductRequest, catalog_pb2.Product],
    ) -> catalog_pb2.Product:
        identity = current_identity()
        identity.require_role("member")
        write = product_input(request.sku, request.product)
        # Writers of one product take turns here rather than race: all but one of a race lose
        # the store's conditional put and retry, each retry costing DynamoDB writes, so dozens
        # at once would mostly retry. Other replicas' writers are still met by those retries.
        async with self._writing.hold((identity.organization_id, request.sku)):
            stored = await asyncio.to_thread(self._store.upsert, identity.organization_id, write)
        return product_message(stored)

    async def DeleteProduct(
        self,
        request: catalog_pb2.DeleteProductRequest,
        context: aio.ServicerContext[
            catalog_pb2.DeleteProductRequest, catalog_pb2.DeleteProductResponse
        ],
    ) -> catalog_pb2.DeleteProductResponse:
        identity = current_identity()
        identity.require_role("member")
        await asyncio.to_thread(self._store.delete, identity.organization_id, request.sku)
        return catalog_pb2.DeleteProductResponse()

    async def BatchUpsertProducts(
        self,
        request: catalog_pb2.BatchUpsertProductsRequest,
        context: aio.ServicerContext[
            catalog_pb2.BatchUpsertProductsRequest, catalog_pb2.BatchUpsertProductsResponse
        ],
    ) -> catalog_pb2.BatchUpsertProductsResponse:
        identity = current_identity()
        identity.require_role("member")
        if len(request.products) > MAX_BATCH_SIZE:
            raise InvalidArgument(
                f"products: at most {MAX_BATCH_SIZE} per request, got {len(request.products)}"
            )
        writes, failed = _product_inputs(request.products)
        result = await asyncio.to_thread(self._store.batch_upsert, identity.organization_id, writes)
        return catalog_pb2.BatchUpsertProductsResponse(
            upserted=result.stored,
            unchanged=result.unchanged,
            failed=_failed(failed + result.failed),
        )

    async def BatchDeleteProducts(
        self,
        request: catalog_pb2.BatchDeleteProductsRequest,
        context: aio.ServicerContext[
            catalog_pb2.BatchDeleteProductsRequest, catalog_pb2.BatchDeleteProductsResponse
        ],
    ) -> catalog_pb2.BatchDeleteProductsResponse:
        identity = current_identity()
        identity.require_role("member")
        result = await asyncio.to_thread(
            self._store.batch_delete, identity.organization_id, list(request.skus)
        )
        return catalog_pb2.BatchDeleteProductsResponse(
            deleted=result.deleted, not_found=result.not_found, failed=_failed(result.failed)
        )

    async def GetPriceHistory(
        self,
        request: catalog_pb2.GetPriceHistoryRequest,
        context: aio.ServicerContext[
            catalog_pb2.GetPriceHistoryRequest, catalog_pb2.GetPriceHistoryResponse
        ],
    ) -> catalog_pb2.GetPriceHistoryResponse:
        identity = current_identity()
        points = await asyncio.to_thread(
            self._store.price_history, identity.organization_id, request.sku
        )
        return catalog_pb2.GetPriceHistoryResponse(
            points=[
                catalog_pb2.PricePoint(
                    price=format_price(point.price),
                    currency=point.currency,
                    recorded_at=to_timestamp(point.recorded_at),
                )
                for point in points
            ]
        )


class CatalogInternalServicer(catalog_pb2_grpc.CatalogInternalServiceServicer):
    def __init__(self, store: ProductStore) -> None:
        self._store = store

    async def WriteSyncedProducts(
        self,
        request_iterator: AsyncIterator[catalog_pb2.WriteSyncedProductsRequest],
        context: aio.ServicerContext[
            catalog_pb2.WriteSyncedProductsRequest, catalog_pb2.WriteSyncedProductsResponse
        ],
    ) -> AsyncIterator[catalog_pb2.WriteSyncedProductsResponse]:
        """Each batch answered once it is stored, before the next is read: the sync counts
        what was written as it goes, and its unanswered batches pace it."""
        organization_id, marketplace = 0, ""
        async for batch in request_iterator:
            if not organization_id:
                organization_id, marketplace = batch.organization_id, batch.marketplace
                if organization_id <= 0 or marketplace not in MARKETPLACES:
                    raise InvalidArgument(
                        "the first message must name the organization and the marketplace"
                    )
            writes, refused = _product_inputs(batch.products, marketplace)
            with tally_units() as tally:
                result = await asyncio.to_thread(self._store.batch_upsert, organization_id, writes)
            yield _batch_answer(refused, result, tally.units)

    async def GetStoredProducts(
        self,
        request: catalog_pb2.GetStoredProductsRequest,
        context: aio.ServicerContext[
            catalog_pb2.GetStoredProductsRequest, catalog_pb2.GetStoredProductsResponse
        ],
    ) -> catalog_pb2.GetStoredProductsResponse:
        if request.organization_id <= 0:
            raise InvalidArgument("organization_id: must name an organization")
        products = await asyncio.to_thread(
            self._store.get_many, request.organization_id, list(request.skus)
        )
        return catalog_pb2.GetStoredProductsResponse(
            products=[product_message(product) for product in products]
        )
