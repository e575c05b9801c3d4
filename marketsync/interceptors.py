"""The one gate every RPC passes: who may call it, and how its errors leave the server.

Per method, by the service it belongs to:
- gRPC health and reflection: open.
- services named `...InternalService`: a service credential only (never a user token), signed
  with the key of a service the server lists as a caller of that method.
- methods the server lists as open (register, login): no credential.
- everything else: a user token, verified here (signature, algorithm, expiry) and confirmed by a
  session check (the auth service reads its own tables; other services ask auth, caching the
  answer for at most 30 s). The handler then reads `current_identity()`, never a request field.

Errors: a DomainError becomes its status with its message; a status from a service called
downstream passes through; anything else is logged and answered INTERNAL without details.

Every method that takes one request message, open ones included, is served as a request stream
that reads exactly one message: grpc.aio's unary path, given a stream that ends without a
message (headers with END_STREAM, or a truncated frame), returns without ever sending a status,
so the call stayed open until the caller gave up, and anyone could pile such calls up until
Envoy's circuit breakers refused everybody. Read as a stream, the missing message is seen and
answered INVALID_ARGUMENT at once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from marketsync.errors import DomainError, InvalidArgument, PermissionDenied, Unauthenticated
from marketsync.identity import Identity, UserTokenKeys, VerifiedTokens, bind_identity
from marketsync.keys import PublicKeys
from marketsync.logs import REQUEST_ID_METADATA_KEY, request_id_bound
from marketsync.service_auth import SERVICE_METADATA_KEY, verify_service_token

log = logging.getLogger(__name__)

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
INTERNAL_SERVICE_SUFFIX = "InternalService"
# Statuses from a downstream service that mean the same to our caller.
PASSTHROUGH_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class SessionChecker(Protocol):
    """Confirms a verified token's session is open; answers the identity with the current role."""

    async def __call__(self, identity: Identity) -> Identity: ...


def service_of(method: str) -> str:
    return method.lstrip("/").split("/", 1)[0]


class AccessInterceptor(aio.ServerInterceptor):
    def __init__(
        self,
        *,
        user_token_keys: UserTokenKeys,
        service_keys: PublicKeys,
        check_session: SessionChecker,
        open_methods: frozenset[str] = frozenset(),
        internal_callers: Mapping[str, frozenset[str]] | None = None,
        store_unavailable: tuple[type[Exception], ...] = (),
    ) -> None:
        self._user_tokens = VerifiedTokens(user_token_keys)
        # The public keys of the services that call this one, by name.
        self._service_keys = service_keys
        self._check_session = check_session
        self._open_methods = open_methods
        self._internal_callers = internal_callers or {}
        # Errors of the service's own store that mean "down or overloaded", not "a bug".
        self._store_unavailable = store_unavailable

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return None
        if service_of(method) not in OPEN_SERVICES:
            handler = _wrap_handler(handler, lambda context: self._guard(method, context))
        return _require_message(handler)

    @asynccontextmanager
    async def _guard(
        self, method: str, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        metadata = dict(context.invocation_metadata() or ())
        # Envoy's request id ties every service's log lines to the gateway's access log line;
        # internal calls pass it on (marketsync.service_auth).
        with request_id_bound(str(metadata.get(REQUEST_ID_METADATA_KEY, ""))):
            async with self._answering_errors(method, metadata, context):
                yield

    @asynccontextmanager
    async def _answering_errors(
        self, method: str, metadata: dict[str, Any], context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        reset = None
        where = {"method": method}
        try:
            identity = await self._authenticate(method, metadata)
            if identity is not None:
                reset = bind_identity(identity)
            yield
        except DomainError as exc:
            await context.abort(exc.code, exc.message)
        except aio.AbortError:
            raise
        except aio.AioRpcError as exc:
            await context.abort(*_downstream_status(where, exc))
        except self._store_unavailable as exc:
            log.warning("store unavailable", extra={**where, "detail": str(exc)})
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the database is unavailable; try again shortly"
            )
        except Exception:
            log.exception("unhandled error", extra=where)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")
        finally:
            if reset is not None:
                reset.var.reset(reset)

    async def _authenticate(self, method: str, metadata: dict[str, Any]) -> Identity | None:
        if service_of(method).endswith(INTERNAL_SERVICE_SUFFIX):
            caller = verify_service_token(
                self._service_keys, str(metadata.get(SERVICE_METADATA_KEY, ""))
            )
            if caller not in self._internal_callers.get(method, frozenset()):
                raise PermissionDenied(f"the {caller} service may not call {method}")
            return None
        if method in self._open_methods:
            return None
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "this call needs `authorization: Bearer <token>`; log in to get one"
            )
        return await self._check_session(self._user_tokens.verify(token.strip()))


def _downstream_status(where: dict[str, str], exc: aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    if exc.code() in PASSTHROUGH_CODES:
        return exc.code(), exc.details() or ""
    log.warning(
        "downstream call failed",
        extra={**where, "code": exc.code().name, "detail": exc.details()},
    )
    return grpc.StatusCode.UNAVAILABLE, "a backing service is unavailable; try again shortly"


Guard = Callable[[aio.ServicerContext[Any, Any]], Any]


_UNDECODABLE = object()
UNDECODABLE_MESSAGE = "the request does not match the method's fields; check their names and types"


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A request that does not parse reaches the guard, which answers INVALID_ARGUMENT; grpc
    itself would answer UNKNOWN (a 500 through Envoy)."""
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return _UNDECODABLE

    return parse


def _decoded(request: Any) -> Any:
    if request is _UNDECODABLE:
        raise InvalidArgument(UNDECODABLE_MESSAGE)
    return request


async def _decoded_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


class _AioBehaviours(Protocol):
    """A method handler as grpc.aio's server fills it: coroutine functions (or async generators)
    given aio contexts and request streams. grpc's stubs type only the threaded server's
    handlers, whose behaviours are plain functions over iterators."""

    unary_unary: Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]] | None
    unary_stream: (
        Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any] | Awaitable[None]] | None
    )
    stream_unary: (
        Callable[[AsyncIterator[Any], aio.ServicerContext[Any, Any]], Awaitable[Any]] | None
    )
    stream_stream: (
        Callable[[AsyncIterator[Any], aio.ServicerContext[Any, Any]], AsyncIterator[Any]] | None
    )


def _behaviours(handler: grpc.RpcMethodHandler[Any, Any]) -> _AioBehaviours:
    return cast(_AioBehaviours, handler)


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], guard: Guard
) -> grpc.RpcMethodHandler[Any, Any]:
    codec = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    behaviours = _behaviours(handler)
    if behaviours.unary_unary:
        unary = behaviours.unary_unary

        async def respond(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with guard(context):
                return await unary(_decoded(request), context)

        return grpc.unary_unary_rpc_method_handler(respond, **codec)
    if behaviours.stream_unary:
        streamed = behaviours.stream_unary

        async def respond_to_stream(
            requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
        ) -> Any:
            async with guard(context):
                return await streamed(_decoded_stream(requests), context)

        return grpc.stream_unary_rpc_method_handler(respond_to_stream, **codec)
    if behaviours.stream_stream:
        # Bidirectional handlers here are async generators: each answer they yield is sent.
        answering = behaviours.stream_stream

        # An async generator itself, as the tracing interceptor around it expects.
        async def respond_in_turn(
            requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async with guard(context):
                async for response in answering(_decoded_stream(requests), context):
                    yield response

        return grpc.stream_stream_rpc_method_handler(respond_in_turn, **codec)
    raise TypeError(f"{handler!r}: only unary, client-streaming and bidirectional RPCs are served")


NO_MESSAGE = "the request carries no message"


async def _only_message(
    requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
) -> Any:
    async for request in requests:
        # A second message is ignored, as grpc's own unary path ignores it.
        return request
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, NO_MESSAGE)


def _require_message(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler of a one-message method, served as a request stream that reads that message:
    the aio server dispatches on `request_streaming`, and only its stream path reports a stream
    that ended without one (see the module's docstring)."""
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    behaviours = _behaviours(handler)
    if behaviours.unary_unary:
        unary = behaviours.unary_unary

        async def respond(
            requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
        ) -> Any:
            return await unary(await _only_message(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(respond, **codec)
    if behaviours.unary_stream:
        streamed = behaviours.unary_stream

        async def respond_with_stream(
            requests: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
        ) -> None:
            responses = streamed(await _only_message(requests, context), context)
            if inspect.isawaitable(responses):
                # A coroutine handler writes its responses itself (health's Watch does).
                await responses
                return
            async for response in responses:
                await context.write(response)

        return grpc.stream_stream_rpc_method_handler(respond_with_stream, **codec)
    return handler
