"""Server bootstrap shared by every service: health, reflection, access control, shutdown.

`create_server` binds (port 0 picks a free one, for tests) and answers `(server, port)`;
`serve_until_stopped` marks every service SERVING, waits for SIGTERM or SIGINT, then reports
NOT_SERVING, keeps serving through the drain period (while Envoy, the kubelet and the clients'
health-checked round robin move new calls elsewhere), lets in-flight RPCs finish within the grace
period and runs the clean-up hooks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from marketsync import tracing
from marketsync.config import MAX_MESSAGE_BYTES, ServiceSettings
from marketsync.interceptors import AccessInterceptor, SessionChecker
from marketsync.keepalive import DEFAULT_KEEPALIVE, Keepalive
from marketsync.metrics import ServerMetricsInterceptor, start_exporter

log = logging.getLogger(__name__)

# asyncio.to_thread's default pool is cpu + 4 threads; blocking clients (boto3, the marketplace
# clients) need one per call in flight, up to their connection pools (32).
WORKER_THREADS = 32

# gRPC's limits on a request's metadata, counted as HPACK does (name + value + 32 bytes a field).
# Past the soft limit gRPC refuses a random share of calls RESOURCE_EXHAUSTED (a 429 through
# Envoy, listing the header names), past the hard one all of them. Both sit above the most Envoy
# forwards (gateway.envoy_config.forwarded_headers_bound: 12 KiB accepted becomes at most about
# 28 KiB), so Envoy's own limit, a 431, is the one a client meets. The hard limit only bounds
# what a direct caller can make a service hold.
MAX_METADATA_BYTES = 32 * 1024
ABSOLUTE_MAX_METADATA_BYTES = 64 * 1024
# Clients (Envoy, the other services) balance per call over the connections they hold, so a new
# replica gets load only once they connect to it: every connection is closed (GOAWAY, the client
# reconnects and re-resolves) after about five minutes, gRPC adding its own jitter of 10%.
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000
# Calls under way on an aged connection may finish; sync's write stream to catalog lasts as long
# as a whole sync, so the grace is generous.
MAX_CONNECTION_AGE_GRACE_MS = 60 * 60 * 1000


@dataclass
class Service:
    """A gRPC server with its health servicer and the names of the services it serves."""

    server: aio.Server
    port: int
    health: health_aio.HealthServicer
    service_names: tuple[str, ...]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run as the drain begins, while the server still answers: work that should move elsewhere
    # at once (sync's queued syncs) is handed over here.
    on_drain: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float, drain: float = 0.0) -> None:
        """Report NOT_SERVING, keep serving for `drain` seconds, then stop within `grace`."""
        await self.health.enter_graceful_shutdown()
        for hook in self.on_drain:
            await hook()
        # Calls still arriving while the health checks catch up are answered, not refused.
        await asyncio.sleep(drain)
        await self.server.stop(grace)
        for hook in reversed(self.on_stop):
            await hook()


def create_server(
    *,
    host: str,
    port: int,
    access: AccessInterceptor,
    service_names: Iterable[str],
    register: Callable[[aio.Server], None],
    keepalive: Keepalive = DEFAULT_KEEPALIVE,
) -> Service:
    server = aio.server(
        # Metrics first: they count what the access interceptor answers too. Tracing before
        # access: the session check it makes belongs to the request's trace.
        interceptors=[ServerMetricsInterceptor(), *tracing.server_interceptors(), access],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", ABSOLUTE_MAX_METADATA_BYTES),
            # gRPC's default tolerates a ping without data only every five minutes; our clients
            # ping every keepalive interval, and idle client streams would die of it.
            *keepalive.server_options(),
            ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ],
    )
    register(server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = tuple(service_names)
    reflection.enable_server_reflection(
        (
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    return Service(server=server, port=bound, health=health, service_names=names)


async def serve_until_stopped(service: Service, grace: float, drain: float = 0.0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    _freeze_startup_objects()
    log.info("serving", extra={"port": service.port, "services": list(service.service_names)})
    await stop.wait()
    log.info("shutting down", extra={"drain_seconds": drain, "grace_seconds": grace})
    await service.stop(grace, drain)
    log.info("stopped")


def _freeze_startup_objects() -> None:
    """Leave what start-up made (modules, descriptors, channels, pools) out of every later
    garbage collection. A full collection walks every tracked object: in auth it paused the event
    loop for 15 to 20 ms, and each pause landed in the p99 of whatever requests were waiting.
    What start-up left as garbage is collected first, so nothing unreachable stays forever."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: ServiceSettings,
    *,
    service_names: Iterable[str],
    register: Callable[[aio.Server], None],
    check_session: SessionChecker,
    open_methods: frozenset[str] = frozenset(),
    internal_callers: Mapping[str, frozenset[str]] | None = None,
    store_unavailable: tuple[type[Exception], ...] = (),
    on_stop: Iterable[Callable[[], Awaitable[None]]] = (),
    on_drain: Iterable[Callable[[], Awaitable[None]]] = (),
) -> None:
    """Build the server from the service's settings and serve until SIGTERM or SIGINT."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="blocking")
    )
    if settings.metrics_port is not None:
        metrics_port = start_exporter(settings.grpc_host, settings.metrics_port)
        log.info("metrics", extra={"port": metrics_port, "path": "/metrics"})
    access = AccessInterceptor(
        user_token_keys=settings.user_token_keys(),
        service_keys=settings.service_public_keys,
        check_session=check_session,
        open_methods=open_methods,
        internal_callers=internal_callers,
        store_unavailable=store_unavailable,
    )
    service = create_server(
        host=settings.grpc_host,
        port=settings.grpc_port,
        access=access,
        service_names=service_names,
        register=register,
    )
    # Hooks run last to first: the spans of the other hooks are exported too.
    service.on_stop.append(tracing.flush_spans)
    service.on_stop.extend(on_stop)
    service.on_drain.extend(on_drain)
    await serve_until_stopped(
        service, settings.shutdown_grace_seconds, settings.shutdown_drain_seconds
    )
