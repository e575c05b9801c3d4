"""Distributed traces: W3C `traceparent` from Envoy through every service and internal call.

On only where OTEL_EXPORTER_OTLP_ENDPOINT is set: each process then exports its spans with OTLP
over gRPC, as `marketsync-<name>` (the SDK's own variables tune the rest, OTEL_BSP_SCHEDULE_DELAY
and the like). Unset, no tracer provider, exporter or interceptor is installed at all, so a call
costs nothing extra and no `traceparent` is sent.

Spans come from OpenTelemetry's gRPC instrumentation: a server span for every RPC, a client span
for every unary internal call, but for health checks, reflection and claim polls. Its streaming
client interceptors answer a stream call with an async generator instead of the call, which
breaks the reader/writer API sync writes products with, so streaming calls carry the caller's
context without a client span of their own (`inject_context`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager

import grpc
from grpc import aio
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME_PREFIX = "marketsync-"
TRACEPARENT = "traceparent"
# Probes, tooling and polling, not work: a trace per Kubernetes probe, or per claim every sync
# replica makes every few seconds, would bury the real ones.
_UNTRACED_SERVICES = ("grpc.health.", "grpc.reflection.")
_UNTRACED_METHODS = ("/marketsync.auth.v1.AuthInternalService/ClaimSyncs",)


def configure_tracing(process: str) -> None:
    """Export this process's spans as `marketsync-<process>` when the endpoint is set."""
    if not os.environ.get(ENDPOINT_VARIABLE):
        return
    # Imported only here and where tracing is on: a process without it never loads the
    # exporter or the instrumentation (a tenth of a second at start-up).
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: SERVICE_NAME_PREFIX + process})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _provider() -> TracerProvider | None:
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def tracing_enabled() -> bool:
    return _provider() is not None


async def flush_spans() -> None:
    """Export what is still batched; a stopping process would lose its last spans. In a thread:
    an unreachable collector holds it for the exporter's timeout (OTEL_EXPORTER_OTLP_TIMEOUT)."""
    provider = _provider()
    if provider is not None:
        await asyncio.to_thread(provider.shutdown)


def _traced() -> Callable[[grpc.HandlerCallDetails], bool]:
    from opentelemetry.instrumentation.grpc.filters import (
        any_of,
        full_method_name,
        negate,
        service_prefix,
    )

    return negate(
        any_of(
            *(service_prefix(prefix) for prefix in _UNTRACED_SERVICES),
            *(full_method_name(method) for method in _UNTRACED_METHODS),
        )
    )


def server_interceptors() -> list[aio.ServerInterceptor]:
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(filter_=_traced())]


def client_interceptors() -> list[aio.ClientInterceptor]:
    """Client spans for unary calls (see the module's docstring for streaming ones)."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return [
        interceptor
        for interceptor in aio_client_interceptors(filter_=_traced())
        if isinstance(interceptor, aio.UnaryUnaryClientInterceptor)
    ]


def inject_context(metadata: aio.Metadata) -> None:
    """Add the current trace context to a streaming call's metadata."""
    if tracing_enabled():
        propagate.inject(metadata)


def current_traceparent() -> str:
    """The current span's `traceparent`, to be continued later (a queued sync's run); "" when
    there is none."""
    carrier: MutableMapping[str, str] = {}
    if tracing_enabled():
        propagate.inject(carrier)
    return carrier.get(TRACEPARENT, "")


@contextmanager
def continued_span(
    name: str, traceparent: str, attributes: Mapping[str, str | int] | None = None
) -> Iterator[None]:
    """A span of work done later on behalf of a request: a child of the `traceparent` it left,
    or a trace of its own without one."""
    if not tracing_enabled():
        yield
        return
    parent = propagate.extract({TRACEPARENT: traceparent}) if traceparent else context.Context()
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(name, context=parent, attributes=attributes):
        yield


def mark_span_failed(reason: str) -> None:
    """Show the current span as failed, with why, in trace views; nothing outside a span."""
    trace.get_current_span().set_status(Status(StatusCode.ERROR, reason))


def current_trace_id() -> str:
    """The current trace's id in hex, as trace backends show it; "" outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else ""
