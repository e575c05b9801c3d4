"""Queue the due syncs of every organization once (for a Kubernetes CronJob).

Asks auth (AUTH_ADDRESS) to queue a sync of each organization and marketplace that has active
credentials and no sync queued within SYNC_INTERVAL_SECONDS, each to run after a random delay
within SYNC_JITTER_SECONDS. Sync replicas claim them from the queue; no particular replica is
needed. Several schedulers at once queue each due sync once.

Run: python -m services.sync.scheduler
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.config import PrivateKey, load_settings
from marketsync.logs import configure_logging
from marketsync.service_auth import ServiceCredential, internal_channel
from marketsync.tracing import configure_tracing, flush_spans

log = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    auth_address: str = Field(min_length=1)
    # The scheduler's own Ed25519 key: auth lets it queue due syncs and nothing else.
    service_private_key: PrivateKey
    sync_interval_seconds: int = Field(default=21_600, gt=0)
    sync_jitter_seconds: int = Field(default=300, ge=0)
    log_level: str = "INFO"


async def main() -> None:
    settings = load_settings(SchedulerSettings)
    configure_logging("scheduler", settings.log_level)
    configure_tracing("scheduler")
    credential = ServiceCredential(settings.service_private_key, "scheduler")
    try:
        async with internal_channel(settings.auth_address, credential) as channel:
            answer = await auth_pb2_grpc.AuthInternalServiceStub(channel).EnqueueDueSyncs(
                auth_pb2.EnqueueDueSyncsRequest(
                    interval_seconds=settings.sync_interval_seconds,
                    jitter_seconds=settings.sync_jitter_seconds,
                ),
                timeout=60,
            )
    finally:
        await flush_spans()
    log.info("queued due syncs", extra={"count": len(answer.queued)})


if __name__ == "__main__":
    asyncio.run(main())
