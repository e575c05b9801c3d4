"""Start the due syncs of every organization once (for a Kubernetes CronJob).

Asks a sync replica (SYNC_ADDRESS) to start, spread over SYNC_JITTER_SECONDS, each sync whose
organization and marketplace has active credentials and no sync started within
SYNC_INTERVAL_SECONDS. Several schedulers at once start each due sync once.

Run: python -m services.sync.scheduler
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketsync.config import MIN_SECRET_LENGTH, load_settings
from marketsync.logs import configure_logging
from marketsync.service_auth import ServiceCredential, internal_channel
from marketsync.sync.v1 import sync_pb2, sync_pb2_grpc

log = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    sync_address: str = Field(min_length=1)
    internal_service_key: str = Field(min_length=MIN_SECRET_LENGTH)
    sync_interval_seconds: int = Field(default=21_600, gt=0)
    sync_jitter_seconds: int = Field(default=300, ge=0)
    log_level: str = "INFO"


async def main() -> None:
    settings = load_settings(SchedulerSettings)
    configure_logging("scheduler", settings.log_level)
    credential = ServiceCredential(settings.internal_service_key, "scheduler")
    async with internal_channel(settings.sync_address, credential) as channel:
        answer = await sync_pb2_grpc.SyncInternalServiceStub(channel).StartDueSyncs(
            sync_pb2.StartDueSyncsRequest(
                interval_seconds=settings.sync_interval_seconds,
                jitter_seconds=settings.sync_jitter_seconds,
            ),
            timeout=60,
        )
    log.info("scheduled due syncs", extra={"count": len(answer.scheduled)})


if __name__ == "__main__":
    asyncio.run(main())
