"""The auth service: wiring of settings, database, domain and gRPC server.

Start-up migrates the credentials database (safe with several replicas starting at once), then
serves. Run: python -m services.auth.server
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import psycopg
from grpc import aio
from prometheus_client import REGISTRY
from pydantic import Field

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.config import TokenIssuerSettings, load_settings
from marketsync.logs import configure_logging
from marketsync.server import serve
from marketsync.tracing import configure_tracing
from services.auth.accounts import Accounts
from services.auth.credentials import Credentials
from services.auth.database import open_pool
from services.auth.invitations import Invitations
from services.auth.metrics import AuthStateCollector
from services.auth.migrations import migrate
from services.auth.organizations import Organizations
from services.auth.passwords import PasswordHasher
from services.auth.servicer import AuthInternalServicer, AuthServicer, CredentialsServicer
from services.auth.sync_logs import QueuePolicy, SyncLogs
from services.auth.throttle import ClientRateLimit
from services.auth.vault import Vault

SERVICE_NAMES = tuple(
    auth_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("AuthService", "CredentialsService", "AuthInternalService")
)
# Which service may call each internal RPC: catalog and sync check sessions; only sync reads
# credentials and runs syncs; the scheduler (and sync's own, when it runs one) queues due syncs.
INTERNAL_CALLERS = {
    f"/marketsync.auth.v1.AuthInternalService/{method}": frozenset(callers)
    for method, callers in {
        "CheckSession": ("catalog", "sync"),
        "GetMarketplaceCredentials": ("sync",),
        "EnqueueSync": ("sync",),
        "EnqueueDueSyncs": ("scheduler", "sync"),
        "ClaimSyncs": ("sync",),
        "HeartbeatSyncLog": ("sync",),
        "FinishSyncLog": ("sync",),
        "ReleaseSyncLog": ("sync",),
        "GetSyncLog": ("sync",),
        "ListSyncLogs": ("sync",),
    }.items()
}
OPEN_METHODS = frozenset(
    {"/marketsync.auth.v1.AuthService/Register", "/marketsync.auth.v1.AuthService/Login"}
)


class AuthSettings(TokenIssuerSettings):
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    cred_database_url: str = Field(min_length=1)
    credentials_encryption_key: str = Field(min_length=1)
    # Off for a pooler that cannot keep prepared statements (PgBouncer before 1.21).
    database_prepared_statements: bool = True
    database_pool_size: int = Field(default=10, ge=1)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # A running sync whose heartbeat is older than this is taken for dead and queued again.
    sync_lease_seconds: int = Field(default=120, ge=5)
    # Runs of one sync at most (a failure that may pass, or a replica that died, retries it).
    sync_max_attempts: int = Field(default=3, ge=1)
    # Attempt n waits this times 2**(n-1) before the next.
    sync_retry_backoff_seconds: float = Field(default=30.0, ge=0)
    # Logins and registrations per client address (as Envoy sees it), a token bucket per auth
    # replica: this many at once, refilled at the rate below. 0 turns the limit off.
    login_rate_burst: int = Field(default=30, ge=0)
    login_rate_per_minute: float = Field(default=30.0, gt=0)
    # The interval the scheduler queues syncs at (its SYNC_INTERVAL_SECONDS): an organization
    # whose last completed sync is older than twice this is overdue (a metric, for an alert).
    sync_interval_seconds: int = Field(default=21600, gt=0)


HOUSEKEEPING_INTERVAL_SECONDS = 60
log = logging.getLogger(__name__)


async def keep_house(accounts: Accounts, sync_logs: SyncLogs) -> None:
    """Every minute: queue again syncs whose replica died, delete long-ended sessions and stale
    login counters. Idempotent, so replicas may overlap."""
    while True:
        try:
            dead = await sync_logs.requeue_expired()
            sessions, counters = await accounts.purge_ended()
            if dead or sessions or counters:
                log.info(
                    "housekeeping",
                    extra={"dead_syncs": dead, "sessions": sessions, "counters": counters},
                )
        except psycopg.Error as exc:
            log.warning("housekeeping failed; trying again", extra={"detail": str(exc)})
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_SECONDS)


async def main() -> None:
    settings = load_settings(AuthSettings)
    configure_logging("auth", settings.log_level)
    configure_tracing("auth")
    await migrate(settings.cred_database_url)
    pool = await open_pool(
        settings.cred_database_url,
        prepare_threshold=5 if settings.database_prepared_statements else None,
        max_size=settings.database_pool_size,
    )
    accounts = Accounts(
        pool,
        token_secret=settings.user_token_signing_key(),
        passwords=PasswordHasher(settings.bcrypt_rounds),
        client_limit=ClientRateLimit(
            burst=settings.login_rate_burst, per_minute=settings.login_rate_per_minute
        )
        if settings.login_rate_burst
        else None,
    )
    organizations = Organizations(pool)
    invitations = Invitations(pool)
    credentials = Credentials(pool, Vault.from_setting(settings.credentials_encryption_key))
    sync_logs = SyncLogs(
        pool,
        QueuePolicy(
            lease=timedelta(seconds=settings.sync_lease_seconds),
            max_attempts=settings.sync_max_attempts,
            retry_backoff=timedelta(seconds=settings.sync_retry_backoff_seconds),
        ),
    )
    housekeeping = asyncio.create_task(keep_house(accounts, sync_logs))
    REGISTRY.register(
        AuthStateCollector(
            pool,
            asyncio.get_running_loop(),
            overdue_after=timedelta(seconds=2 * settings.sync_interval_seconds),
        )
    )

    async def stop_background_work() -> None:
        housekeeping.cancel()
        await asyncio.gather(housekeeping, return_exceptions=True)
        await pool.close()

    def register(server: aio.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(accounts, organizations, invitations), server
        )
        auth_pb2_grpc.add_CredentialsServiceServicer_to_server(
            CredentialsServicer(credentials), server
        )
        auth_pb2_grpc.add_AuthInternalServiceServicer_to_server(
            AuthInternalServicer(accounts, credentials, sync_logs), server
        )

    await serve(
        settings,
        service_names=SERVICE_NAMES,
        register=register,
        check_session=accounts.check_session,
        open_methods=OPEN_METHODS,
        internal_callers=INTERNAL_CALLERS,
        # A lost database or an exhausted pool is a 503 to try again, not a bug.
        store_unavailable=(psycopg.OperationalError,),
        on_stop=[stop_background_work],
    )


if __name__ == "__main__":
    asyncio.run(main())
