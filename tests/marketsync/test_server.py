"""The server bootstrap: health per service, a drain and a graceful stop that let in-flight RPCs
end, and internal channels that balance over every replica and avoid a draining one."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketsync import server
from marketsync.identity import Identity
from marketsync.interceptors import AccessInterceptor
from marketsync.keys import PublicKeys
from marketsync.server import Service, create_server
from marketsync.service_auth import ServiceCredential, grpc_target, internal_channel
from tests import grpc_bytes

SLOW_METHOD = "/test.v1.Slow/Call"


async def refuse(identity: Identity) -> Identity:
    raise AssertionError("an open method needs no session check")


def test_services_report_serving_and_a_stop_lets_in_flight_calls_finish() -> None:
    async def scenario() -> None:
        entered = asyncio.Event()

        async def slow(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
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
            # types-grpcio-health-checking's HealthStub declares none of its methods.
            answer = await health.Check(check)  # type: ignore[attr-defined]
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

            call = grpc_bytes.unary_unary(channel, SLOW_METHOD)(b"")
            await entered.wait()
            stopping = asyncio.create_task(service.stop(grace=5))
            assert await call == b"done"
            await stopping

    asyncio.run(scenario())


WHO_METHOD = "/test.v1.Who/Call"


def _answering_service(name: bytes) -> Service:
    async def who(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        return name

    handler = grpc.method_handlers_generic_handler(
        "test.v1.Who", {"Call": grpc.unary_unary_rpc_method_handler(who)}
    )
    return create_server(
        host="127.0.0.1",
        port=0,
        access=AccessInterceptor(
            user_token_keys="j" * 40,
            service_keys=PublicKeys(),
            check_session=refuse,
            open_methods=frozenset({WHO_METHOD}),
        ),
        service_names=["test.v1.Who"],
        register=lambda server: server.add_generic_rpc_handlers((handler,)),
    )


async def _until_not_serving(channel: aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    # types-grpcio-health-checking's HealthStub declares none of its methods.
    watch = health.Watch(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
    async for answer in watch:
        if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            watch.cancel()
            return


def test_a_stopping_service_reports_not_serving_and_answers_through_the_drain() -> None:
    async def scenario() -> None:
        service = _answering_service(b"one")
        handed_over = asyncio.Event()

        async def hand_over() -> None:
            handed_over.set()

        service.on_drain.append(hand_over)
        await service.start()
        async with aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stopping = asyncio.create_task(service.stop(grace=5, drain=3600))
            await _until_not_serving(channel)
            await handed_over.wait()
            # A caller whose health check has not caught up yet is still answered.
            assert await grpc_bytes.unary_unary(channel, WHO_METHOD)(b"") == b"one"
            stopping.cancel()
        await service.server.stop(None)

    asyncio.run(scenario())


def test_internal_channels_spread_calls_and_skip_a_draining_replica() -> None:
    async def scenario() -> None:
        first, second = _answering_service(b"first"), _answering_service(b"second")
        for service in (first, second):
            await service.start()
        target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
        credential = ServiceCredential(Ed25519PrivateKey.generate(), "sync")
        async with internal_channel(target, credential) as channel:
            call = grpc_bytes.unary_unary(channel, WHO_METHOD)
            assert {await call(b"") for _ in range(10)} == {b"first", b"second"}
            stopping = asyncio.create_task(first.stop(grace=5, drain=3600))
            # The channel watches each replica's health; once it has seen the change, every
            # call goes to the other one.
            answers = [await call(b"") for _ in range(200)]
            assert answers[-20:] == [b"second"] * 20
            stopping.cancel()
        for service in (first, second):
            await service.server.stop(None)

    asyncio.run(scenario())


def test_a_plain_address_is_resolved_by_dns_and_a_target_kept() -> None:
    assert grpc_target("auth:50051") == "dns:///auth:50051"
    assert grpc_target("ipv4:127.0.0.1:1,127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"


PEER_METHOD = "/test.v1.Peer/Call"


def test_connections_are_closed_after_their_age_without_failing_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Minutes in production; half a second here, so the test sees a few connections come and go.
    monkeypatch.setattr(server, "MAX_CONNECTION_AGE_MS", 500)
    monkeypatch.setattr(server, "MAX_CONNECTION_AGE_GRACE_MS", 1000)

    async def peer(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        return context.peer().encode()

    async def scenario() -> None:
        handler = grpc.method_handlers_generic_handler(
            "test.v1.Peer", {"Call": grpc.unary_unary_rpc_method_handler(peer)}
        )
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=PublicKeys(),
                check_session=refuse,
                open_methods=frozenset({PEER_METHOD}),
            ),
            service_names=["test.v1.Peer"],
            register=lambda grpc_server: grpc_server.add_generic_rpc_handlers((handler,)),
        )
        await service.start()
        credential = ServiceCredential(Ed25519PrivateKey.generate(), "sync")
        async with internal_channel(f"127.0.0.1:{service.port}", credential) as channel:
            call = grpc_bytes.unary_unary(channel, PEER_METHOD)
            # Each client connection comes from a port of its own: a new peer is a new connection.
            peers = [await call(b"")]
            deadline = asyncio.get_running_loop().time() + 30
            while len(set(peers)) < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                peers.append(await call(b""))
            assert len(set(peers)) >= 3, "the server never closed an aged connection"
        await service.server.stop(None)

    asyncio.run(scenario())
