"""The server bootstrap: health per service, and a graceful stop that lets in-flight RPCs end."""

from __future__ import annotations

import asyncio

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketsync.identity import Identity
from marketsync.interceptors import AccessInterceptor
from marketsync.keys import PublicKeys
from marketsync.server import create_server

SLOW_METHOD = "/test.v1.Slow/Call"


async def refuse(identity: Identity) -> Identity:
    raise AssertionError("an open method needs no session check")


def test_services_report_serving_and_a_stop_lets_in_flight_calls_finish() -> None:
    async def scenario() -> None:
        entered = asyncio.Event()

        async def slow(request: bytes, context: aio.ServicerContext) -> bytes:
            entered.set()
            await asyncio.sleep(0.5)
            return b"done"

        handler = grpc.method_handlers_generic_handler(
            "test.v1.Slow", {"Call": grpc.unary_unary_rpc_method_handler(slow)}
        )
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=PublicKeys(),
                check_session=refuse,
                open_methods=frozenset({SLOW_METHOD}),
            ),
            service_names=["test.v1.Slow"],
            register=lambda server: server.add_generic_rpc_handlers((handler,)),
        )
        await service.start()
        async with aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            check = health_pb2.HealthCheckRequest(service="test.v1.Slow")
            assert (await health.Check(check)).status == health_pb2.HealthCheckResponse.SERVING

            call = channel.unary_unary(SLOW_METHOD)(b"")
            await entered.wait()
            stopping = asyncio.create_task(service.stop(grace=5))
            assert await call == b"done"
            await stopping

    asyncio.run(scenario())
