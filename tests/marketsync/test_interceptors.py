"""One-message methods answer a request that ends without its message (issue 12, point 1), and
the server takes all the metadata Envoy may forward (point 4), on a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.envoy_config import forwarded_headers_bound
from marketsync.identity import Identity
from marketsync.interceptors import NO_MESSAGE, AccessInterceptor
from marketsync.keys import PublicKeys
from marketsync.server import create_server
from tests import grpc_bytes

SERVICE = "test.v1.Echo"
OPEN = f"/{SERVICE}/Open"
GUARDED = f"/{SERVICE}/Guarded"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
# Well past the time a status takes on loopback; the bug left the call open until the deadline.
DEADLINE_SECONDS = 2.0


async def refuse(identity: Identity) -> Identity:
    raise AssertionError("no call in these tests gets as far as a session check")


async def echo(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


Scenario = Callable[[aio.Channel], Awaitable[None]]


def run_against_server(scenario: Scenario) -> None:
    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Open": grpc.unary_unary_rpc_method_handler(echo),
                "Guarded": grpc.unary_unary_rpc_method_handler(echo),
            },
        )
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=PublicKeys(),
                check_session=refuse,
                open_methods=frozenset({OPEN}),
            ),
            service_names=[SERVICE],
            register=lambda server: server.add_generic_rpc_handlers((handler,)),
        )
        await service.start()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                await scenario(channel)
        finally:
            await service.stop(grace=0)

    asyncio.run(main())


async def nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that ends at once: headers, then END_STREAM


@pytest.mark.parametrize("method", [OPEN, GUARDED, HEALTH_CHECK])
def test_a_unary_call_that_ends_without_its_message_is_answered_invalid_argument(
    method: str,
) -> None:
    async def scenario(channel: aio.Channel) -> None:
        # A client-streaming call with no message is, on the wire, a unary call without one.
        call = grpc_bytes.stream_unary(channel, method)(nothing(), timeout=DEADLINE_SECONDS)
        with pytest.raises(aio.AioRpcError) as failed:
            await call
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failed.value.details() == NO_MESSAGE

    run_against_server(scenario)


def test_a_server_streaming_call_that_ends_without_its_message_is_answered_too() -> None:
    async def scenario(channel: aio.Channel) -> None:
        call = grpc_bytes.stream_stream(channel, HEALTH_WATCH)(nothing(), timeout=DEADLINE_SECONDS)
        with pytest.raises(aio.AioRpcError) as failed:
            async for _ in call:
                pass
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failed.value.details() == NO_MESSAGE

    run_against_server(scenario)


def test_calls_with_their_message_are_served_as_before() -> None:
    async def scenario(channel: aio.Channel) -> None:
        assert (
            await grpc_bytes.unary_unary(channel, OPEN)(b"hello", timeout=DEADLINE_SECONDS)
            == b"hello"
        )
        with pytest.raises(aio.AioRpcError) as refused:
            await grpc_bytes.unary_unary(channel, GUARDED)(b"hello", timeout=DEADLINE_SECONDS)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE)
        serving = health_pb2.HealthCheckResponse.SERVING
        # types-grpcio-health-checking's HealthStub declares none of its methods.
        checked = await health.Check(request, timeout=DEADLINE_SECONDS)  # type: ignore[attr-defined]
        assert checked.status == serving
        watch = health.Watch(request, timeout=DEADLINE_SECONDS)  # type: ignore[attr-defined]
        assert (await watch.read()).status == serving
        watch.cancel()

    run_against_server(scenario)


def test_the_metadata_envoy_may_forward_is_always_accepted() -> None:
    # gRPC counts a field as name + value + 32 bytes; fill Envoy's worst case with 20 fields.
    fields = 20
    value_size = forwarded_headers_bound() // fields - 32 - len("x-pad-00")
    metadata = [(f"x-pad-{n:02d}", "p" * value_size) for n in range(fields)]

    async def scenario(channel: aio.Channel) -> None:
        # Past the soft limit a random share is refused: twenty calls, not one.
        for _ in range(20):
            answer = await grpc_bytes.unary_unary(channel, OPEN)(
                b"hello", metadata=metadata, timeout=DEADLINE_SECONDS
            )
            assert answer == b"hello"

    run_against_server(scenario)
