"""The sync service: wiring of settings, marketplace clients, worker, scheduler and server.

Run: python -m services.sync.server
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncGenerator, Mapping

from grpc import aio
from pydantic import Field

from marketsync.auth.v1 import auth_pb2_grpc
from marketsync.catalog.v1 import catalog_pb2_grpc
from marketsync.config import PrivateKey, ServiceSettings, load_settings
from marketsync.keys import private_key_text
from marketsync.logs import configure_logging
from marketsync.page_tokens import PageTokenSigner, derive_key
from marketsync.server import serve
from marketsync.service_auth import ServiceCredential, internal_channel
from marketsync.sessions import RemoteSessionChecker
from marketsync.sync.v1 import sync_pb2, sync_pb2_grpc
from marketsync.tracing import configure_tracing
from services.sync.marketplaces import (
    AMAZON,
    AmazonCatalog,
    AmazonEndpoints,
    CatalogPage,
    Pacer,
    StoredEnrichment,
    WalmartCatalog,
    WalmartEndpoints,
)
from services.sync.runner import OpenCatalogue, SyncWorker
from services.sync.servicer import SyncServicer

SERVICE_NAMES = (sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name,)
log = logging.getLogger(__name__)


class SyncSettings(ServiceSettings):
    grpc_port: int = Field(default=50053, ge=0, le=65535)
    auth_address: str = Field(min_length=1)
    catalog_address: str = Field(min_length=1)
    # Sync's own Ed25519 key: it signs the credentials sync shows auth and catalog.
    service_private_key: PrivateKey
    # Unset: the real marketplaces.
    amazon_sp_api_endpoint: str = ""
    amazon_lwa_token_url: str = ""
    walmart_api_base_url: str = ""
    # Seconds between scheduled syncs of an organization's marketplace, queued by this process;
    # 0 leaves scheduling to an outside scheduler (the Kubernetes CronJob).
    sync_schedule_interval_seconds: int = Field(default=0, ge=0)
    sync_schedule_jitter_seconds: int = Field(default=60, ge=0)
    sync_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Syncs this replica runs at once. A waiting sync holds no thread, only its state (about
    # 10 MB for a 50,000-product Walmart catalogue while stock and items are joined).
    sync_max_concurrent: int = Field(default=100, ge=1)
    # How often an idle replica looks for queued syncs.
    sync_claim_interval_seconds: float = Field(default=2.0, gt=0)


def catalogue_opener(settings: SyncSettings, pacer: Pacer) -> OpenCatalogue:
    real_amazon = AmazonEndpoints()
    amazon = AmazonEndpoints(
        sp_api=settings.amazon_sp_api_endpoint or real_amazon.sp_api,
        lwa_token_url=settings.amazon_lwa_token_url or real_amazon.lwa_token_url,
    )
    walmart = WalmartEndpoints(
        base_url=settings.walmart_api_base_url or WalmartEndpoints().base_url
    )

    def open_catalogue(
        marketplace: str,
        credentials: Mapping[str, str],
        organization_id: int,
        stored_enrichment: StoredEnrichment,
    ) -> AsyncGenerator[CatalogPage, None]:
        account = str(organization_id)
        if marketplace == AMAZON:
            return AmazonCatalog(
                credentials, amazon, pacer, account=account, stored_enrichment=stored_enrichment
            ).pages()
        return WalmartCatalog(credentials, walmart, pacer, account=account).pages()

    return open_catalogue


async def schedule_forever(worker: SyncWorker, interval: int, jitter: int) -> None:
    """Queue due syncs a few times per interval; auth queues each once."""
    tick = max(10, min(interval // 4, 300))
    while True:
        try:
            await worker.enqueue_due(interval, jitter)
        except aio.AioRpcError as exc:
            log.warning("scheduler could not queue due syncs", extra={"detail": exc.details()})
        await asyncio.sleep(tick)


async def main() -> None:
    settings = load_settings(SyncSettings)
    configure_logging("sync", settings.log_level)
    configure_tracing("sync")
    credential = ServiceCredential(settings.service_private_key, "sync")
    auth_channel = internal_channel(settings.auth_address, credential)
    catalog_channel = internal_channel(settings.catalog_address, credential)
    auth = auth_pb2_grpc.AuthInternalServiceStub(auth_channel)
    worker = SyncWorker(
        auth=auth,
        catalog=catalog_pb2_grpc.CatalogInternalServiceStub(catalog_channel),
        open_catalogue=catalogue_opener(settings, Pacer()),
        # The pod's name in Kubernetes; the process id tells local replicas apart.
        replica=f"{socket.gethostname()}:{os.getpid()}",
        max_concurrent=settings.sync_max_concurrent,
        claim_interval_seconds=settings.sync_claim_interval_seconds,
        heartbeat_seconds=settings.sync_heartbeat_seconds,
    )
    page_tokens = PageTokenSigner(
        # Sync's own secret: no other service can make its page tokens.
        derive_key(private_key_text(settings.service_private_key), "sync logs")
    )

    def register(server: aio.Server) -> None:
        sync_pb2_grpc.add_SyncServiceServicer_to_server(
            SyncServicer(worker, auth, page_tokens), server
        )

    background = [asyncio.create_task(worker.claim_forever())]
    if settings.sync_schedule_interval_seconds:
        background.append(
            asyncio.create_task(
                schedule_forever(
                    worker,
                    settings.sync_schedule_interval_seconds,
                    settings.sync_schedule_jitter_seconds,
                )
            )
        )

    async def stop_background_work() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await worker.stop()
        await auth_channel.close()
        await catalog_channel.close()

    await serve(
        settings,
        service_names=SERVICE_NAMES,
        register=register,
        check_session=RemoteSessionChecker(auth),
        # On SIGTERM, before the drain: claim nothing more and hand the running syncs back, so
        # another replica starts them within a claim interval instead of after the drain.
        on_drain=[worker.stop],
        on_stop=[stop_background_work],
    )


if __name__ == "__main__":
    asyncio.run(main())
