"""Prometheus metrics every process shares: the exporter and the gRPC interceptors.

Each process serves the Prometheus text format on its own port (METRICS_PORT, see
`ServiceSettings.metrics_port`), never routed by Envoy. Every RPC a server handles and every call
an internal channel makes is counted by service, method and final status code, with its latency:
streams are counted once they end, with the status they ended with. A service's own metrics live
in its own `metrics` module; they all go to prometheus_client's default registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc import aio
from prometheus_client import Counter, Histogram, disable_created_metrics, start_http_server

# No `_created` series beside every counter and histogram: twice the series, for nothing our
# dashboards or alerts read.
disable_created_metrics()

# From a cached answer (a millisecond) to a sync's write stream of many minutes.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

SERVER_HANDLED = Counter(
    "marketsync_grpc_server_handled_total",
    "RPCs this server finished, by final status code.",
    ["service", "method", "code"],
)
SERVER_SECONDS = Histogram(
    "marketsync_grpc_server_handling_seconds",
    "Time from an RPC's arrival until it finished (a stream: until it ended).",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
CLIENT_HANDLED = Counter(
    "marketsync_grpc_client_handled_total",
    "Calls this process made to another service, by final status code.",
    ["service", "method", "code"],
)
CLIENT_SECONDS = Histogram(
    "marketsync_grpc_client_handling_seconds",
    "Time from starting a call to another service until it finished.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)


def start_exporter(host: str, port: int) -> int:
    """Serve the default registry on host:port (0: a free port) in a daemon thread; answers
    the port bound."""
    server, _ = start_http_server(port, addr=host.strip("[]"))
    return int(server.server_address[1])


def _split(full_method: str) -> tuple[str, str]:
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


# ---- servers ---------------------------------------------------------------------------------


class ServerMetricsInterceptor(aio.ServerInterceptor):
    """Counts every RPC by the status it ended with. First in the server's interceptors, so it
    sees the statuses the other interceptors answer too (a refused credential, say)."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _measured(handler, *_split(handler_call_details.method))


def _measured(
    handler: grpc.RpcMethodHandler[Any, Any], service: str, method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    async def observed(behavior: Any, request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                # A handler that yields its answers: written here, so the end is seen here.
                async for response in result:
                    await context.write(response)
                result = None
            elif asyncio.iscoroutine(result):
                result = await result
            code = _status_of(context, grpc.StatusCode.OK)
            return result
        except aio.AbortError:
            code = _status_of(context, grpc.StatusCode.UNKNOWN)
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            SERVER_HANDLED.labels(service, method, code.name).inc()
            SERVER_SECONDS.labels(service, method).observe(time.perf_counter() - started)

    # grpc.aio runs a handler as a coroutine only when it is a coroutine function.
    if handler.unary_unary:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            return await observed(unary, request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.unary_stream:
        streamed = handler.unary_stream

        async def unary_stream(request: Any, context: aio.ServicerContext[Any, Any]) -> None:
            await observed(streamed, request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
    if handler.stream_unary:
        gathered = handler.stream_unary

        async def stream_unary(
            requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
        ) -> Any:
            return await observed(gathered, requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
    answering = handler.stream_stream

    async def stream_stream(
        requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
    ) -> None:
        await observed(answering, requests, context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)


def _status_of(context: aio.ServicerContext[Any, Any], default: grpc.StatusCode) -> grpc.StatusCode:
    """The status the handler set or aborted with; `default` when it set none."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((status for status in grpc.StatusCode if status.value[0] == code), default)
    return default


# ---- internal clients ------------------------------------------------------------------------


# A call's status is read with an await, so each ended call is counted by a task of its own;
# held here until it is done (the event loop keeps only weak references to tasks).
_COUNTING: set[asyncio.Task[None]] = set()


class _ClientMetrics:
    def _watch(self, method: str | bytes, call: aio.Call) -> None:
        """Count the call once it ends, whatever ends it."""
        started = time.perf_counter()
        service, name = _split(method if isinstance(method, str) else method.decode())

        def ended(done: aio.Call) -> None:
            elapsed = time.perf_counter() - started
            counting = asyncio.ensure_future(_record_call(done, service, name, elapsed))
            _COUNTING.add(counting)
            counting.add_done_callback(_COUNTING.discard)

        call.add_done_callback(ended)


async def _record_call(call: aio.Call, service: str, method: str, elapsed: float) -> None:
    code = grpc.StatusCode.CANCELLED if call.cancelled() else await call.code()
    CLIENT_HANDLED.labels(service, method, code.name).inc()
    CLIENT_SECONDS.labels(service, method).observe(elapsed)


# grpc.aio files each interceptor under the first call kind it implements, so each kind of
# call needs an interceptor object of its own (as in marketsync.service_auth).
class _UnaryUnary(_ClientMetrics, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        call = await continuation(client_call_details, request)
        self._watch(client_call_details.method, call)
        return call


class _UnaryStream(_ClientMetrics, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        call = await continuation(client_call_details, request)
        self._watch(client_call_details.method, call)
        return call


class _StreamUnary(_ClientMetrics, aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        call = await continuation(client_call_details, request_iterator)
        self._watch(client_call_details.method, call)
        return call


class _StreamStream(_ClientMetrics, aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        call = await continuation(client_call_details, request_iterator)
        self._watch(client_call_details.method, call)
        return call


def client_interceptors() -> list[aio.ClientInterceptor]:
    """The interceptors that count an internal channel's calls, one per kind of call."""
    return [kind() for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
