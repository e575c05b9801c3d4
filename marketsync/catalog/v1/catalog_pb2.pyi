import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Listing(_message.Message):
    __slots__ = ("marketplace", "price", "currency", "inventory_quantity", "external_id", "status", "synced_at")
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SYNCED_AT_FIELD_NUMBER: _ClassVar[int]
    marketplace: str
    price: str
    currency: str
    inventory_quantity: int
    external_id: str
    status: str
    synced_at: _timestamp_pb2.Timestamp
    def __init__(self, marketplace: _Optional[str] = ..., price: _Optional[str] = ..., currency: _Optional[str] = ..., inventory_quantity: _Optional[int] = ..., external_id: _Optional[str] = ..., status: _Optional[str] = ..., synced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("sku", "marketplace", "title", "description", "brand", "category", "price", "currency", "inventory_quantity", "image_url", "asin", "created_at", "updated_at", "synced_at", "listings")
    SKU_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    ASIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SYNCED_AT_FIELD_NUMBER: _ClassVar[int]
    LISTINGS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    marketplace: str
    title: str
    description: str
    brand: str
    category: str
    price: str
    currency: str
    inventory_quantity: int
    image_url: str
    asin: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    synced_at: _timestamp_pb2.Timestamp
    listings: _containers.RepeatedCompositeFieldContainer[Listing]
    def __init__(self, sku: _Optional[str] = ..., marketplace: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., brand: _Optional[str] = ..., category: _Optional[str] = ..., price: _Optional[str] = ..., currency: _Optional[str] = ..., inventory_quantity: _Optional[int] = ..., image_url: _Optional[str] = ..., asin: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., synced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., listings: _Optional[_Iterable[_Union[Listing, _Mapping]]] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "marketplace")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    marketplace: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., marketplace: _Optional[str] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    next_page_token: str
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class UpsertProductRequest(_message.Message):
    __slots__ = ("sku", "product")
    SKU_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    product: Product
    def __init__(self, sku: _Optional[str] = ..., product: _Optional[_Union[Product, _Mapping]] = ...) -> None: ...

class DeleteProductRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class DeleteProductResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BatchUpsertProductsRequest(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class FailedProduct(_message.Message):
    __slots__ = ("sku", "message")
    SKU_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    message: str
    def __init__(self, sku: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BatchUpsertProductsResponse(_message.Message):
    __slots__ = ("upserted", "failed", "unchanged")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    failed: _containers.RepeatedCompositeFieldContainer[FailedProduct]
    unchanged: int
    def __init__(self, upserted: _Optional[int] = ..., failed: _Optional[_Iterable[_Union[FailedProduct, _Mapping]]] = ..., unchanged: _Optional[int] = ...) -> None: ...

class BatchDeleteProductsRequest(_message.Message):
    __slots__ = ("skus",)
    SKUS_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, skus: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchDeleteProductsResponse(_message.Message):
    __slots__ = ("deleted", "not_found", "failed")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    not_found: _containers.RepeatedScalarFieldContainer[str]
    failed: _containers.RepeatedCompositeFieldContainer[FailedProduct]
    def __init__(self, deleted: _Optional[int] = ..., not_found: _Optional[_Iterable[str]] = ..., failed: _Optional[_Iterable[_Union[FailedProduct, _Mapping]]] = ...) -> None: ...

class GetPriceHistoryRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class PricePoint(_message.Message):
    __slots__ = ("price", "currency", "recorded_at")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    price: str
    currency: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, price: _Optional[str] = ..., currency: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPriceHistoryResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[PricePoint]
    def __init__(self, points: _Optional[_Iterable[_Union[PricePoint, _Mapping]]] = ...) -> None: ...

class WriteSyncedProductsRequest(_message.Message):
    __slots__ = ("organization_id", "marketplace", "products")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    marketplace: str
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, organization_id: _Optional[int] = ..., marketplace: _Optional[str] = ..., products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class WriteSyncedProductsResponse(_message.Message):
    __slots__ = ("written", "unchanged", "failed", "failed_count", "read_units", "write_units")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    READ_UNITS_FIELD_NUMBER: _ClassVar[int]
    WRITE_UNITS_FIELD_NUMBER: _ClassVar[int]
    written: int
    unchanged: int
    failed: _containers.RepeatedCompositeFieldContainer[FailedProduct]
    failed_count: int
    read_units: float
    write_units: float
    def __init__(self, written: _Optional[int] = ..., unchanged: _Optional[int] = ..., failed: _Optional[_Iterable[_Union[FailedProduct, _Mapping]]] = ..., failed_count: _Optional[int] = ..., read_units: _Optional[float] = ..., write_units: _Optional[float] = ...) -> None: ...

class GetStoredProductsRequest(_message.Message):
    __slots__ = ("organization_id", "skus")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    skus: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, organization_id: _Optional[int] = ..., skus: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStoredProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...
