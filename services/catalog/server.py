"""The catalog service: wiring of settings, DynamoDB, store and gRPC server.

Run: python -m services.catalog.server
"""

from __future__ import annotations

import asyncio

from grpc import aio
from pydantic import Field

from marketsync.auth.v1 import auth_pb2_grpc
from marketsync.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from marketsync.config import PrivateKey, ServiceSettings, load_settings
from marketsync.keys import private_key_text
from marketsync.logs import configure_logging
from marketsync.page_tokens import derive_key
from marketsync.server import serve
from marketsync.service_auth import ServiceCredential, internal_channel
from marketsync.sessions import RemoteSessionChecker
from marketsync.tracing import configure_tracing
from services.catalog.capacity import indexes_of, meter_dynamodb
from services.catalog.dynamo import make_dynamodb_client
from services.catalog.servicer import CatalogInternalServicer, CatalogServicer
from services.catalog.store import ProductStore
from services.catalog.tables import TABLE_DEFINITION, ensure_table

SERVICE_NAMES = tuple(
    catalog_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("CatalogService", "CatalogInternalService")
)


# Only sync writes synced products and reads what it stored.
INTERNAL_CALLERS = {
    f"/marketsync.catalog.v1.CatalogInternalService/{method}": frozenset({"sync"})
    for method in ("WriteSyncedProducts", "GetStoredProducts")
}


class CatalogSettings(ServiceSettings):
    grpc_port: int = Field(default=50052, ge=0, le=65535)
    auth_address: str = Field(min_length=1)
    # Catalog's own Ed25519 key: it signs the credentials catalog shows auth.
    service_private_key: PrivateKey
    products_table_name: str = Field(min_length=3, max_length=255)
    aws_region: str = "us-east-1"
    # Unset: AWS itself.
    dynamodb_endpoint_url: str | None = None
    # For the local stack; in production a platform team creates the table (`make table`).
    create_products_table: bool = False


async def main() -> None:
    settings = load_settings(CatalogSettings)
    configure_logging("catalog", settings.log_level)
    configure_tracing("catalog")
    client = make_dynamodb_client(settings.aws_region, settings.dynamodb_endpoint_url)
    # A local DynamoDB server bills nothing: its units are counted from the items' sizes.
    meter_dynamodb(client, indexes_of(TABLE_DEFINITION), billed=not settings.dynamodb_endpoint_url)
    if settings.create_products_table:
        await asyncio.to_thread(ensure_table, client, settings.products_table_name)
    store = ProductStore(
        client,
        settings.products_table_name,
        # Catalog's own secret: no other service can make its page tokens.
        derive_key(private_key_text(settings.service_private_key), "catalog products"),
    )
    auth_channel = internal_channel(
        settings.auth_address, ServiceCredential(settings.service_private_key, "catalog")
    )

    def register(server: aio.Server) -> None:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(store), server)
        catalog_pb2_grpc.add_CatalogInternalServiceServicer_to_server(
            CatalogInternalServicer(store), server
        )

    await serve(
        settings,
        service_names=SERVICE_NAMES,
        register=register,
        check_session=RemoteSessionChecker(auth_pb2_grpc.AuthInternalServiceStub(auth_channel)),
        internal_callers=INTERNAL_CALLERS,
        on_stop=[auth_channel.close],
    )


if __name__ == "__main__":
    asyncio.run(main())
