"""Keepalive: client streams and connections left idle for many ping intervals survive.

The tests use gRPC's shortest ping interval (one second) so that several pings pass within a few
seconds; in service the interval is 30 s and an idle stream died after a few minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from marketsync.identity import Identity
from marketsync.interceptors import AccessInterceptor
from marketsync.keepalive import DEFAULT_KEEPALIVE, Keepalive
from marketsync.keys import PublicKeys
from marketsync.server import create_server
from marketsync.service_auth import ServiceCredential, internal_channel
from tests import grpc_bytes

SERVICE = "test.v1.Sink"
METHOD = f"/{SERVICE}/Count"
FAST = Keepalive(interval_seconds=1, timeout_seconds=1)
# gRPC's default server policy closes the connection at about the fifth ping of an idle stream
# (its first pings are forgiven while the call's headers go out); eight leave a margin.
IDLE_SECONDS = 8 * FAST.interval_seconds
KEY = Ed25519PrivateKey.generate()


async def refuse(identity: Identity) -> Identity:
    raise AssertionError("an open method needs no session check")


async def count(
    requests: AsyncIterator[bytes], context: aio.ServicerContext[bytes, bytes]
) -> bytes:
    received = 0
    async for _ in requests:
        received += 1
    return str(received).encode()


SINK = grpc.method_handlers_generic_handler(
    SERVICE, {"Count": grpc.stream_unary_rpc_method_handler(count)}
)


async def idle_stream(channel: aio.Channel) -> bytes:
    """Write, stay quiet for IDLE_SECONDS, write again, and answer the response."""
    call = grpc_bytes.stream_unary(channel, METHOD)()
    await call.write(b"first")
    # Watching the response while idle ends a doomed call as soon as the connection drops.
    response = asyncio.ensure_future(call)
    finished, _ = await asyncio.wait({response}, timeout=IDLE_SECONDS)
    if not finished:
        await call.write(b"second")
        await call.done_writing()
    return await response


async def stays_connected(address: str) -> bool:
    """Whether a connection with no call on it stays up for IDLE_SECONDS."""
    # A subchannel pool of its own: otherwise this channel would share the stream's connection.
    options = [*FAST.client_options(), ("grpc.use_local_subchannel_pool", 1)]
    async with aio.insecure_channel(address, options=options) as channel:
        await channel.channel_ready()
        try:
            async with asyncio.timeout(IDLE_SECONDS):
                await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        except TimeoutError:
            return True
        return False


def test_options_on_both_sides_derive_from_one_policy() -> None:
    client = dict(DEFAULT_KEEPALIVE.client_options())
    server = dict(DEFAULT_KEEPALIVE.server_options())
    assert client["grpc.keepalive_time_ms"] == 30_000
    assert client["grpc.http2.max_pings_without_data"] == 0
    assert server["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
    assert (
        server["grpc.keepalive_permit_without_calls"]
        == client["grpc.keepalive_permit_without_calls"]
    )
    with pytest.raises(ValueError):
        Keepalive(interval_seconds=0.5)


def test_idle_streams_and_connections_outlive_many_keepalive_pings() -> None:
    async def scenario() -> None:
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=PublicKeys([("sync", KEY.public_key())]),
                check_session=refuse,
                open_methods=frozenset({METHOD}),
            ),
            service_names=[SERVICE],
            register=lambda server: server.add_generic_rpc_handlers((SINK,)),
            keepalive=FAST,
        )
        await service.start()
        address = f"127.0.0.1:{service.port}"
        try:
            async with internal_channel(
                address, ServiceCredential(KEY, "sync"), keepalive=FAST
            ) as channel:
                response, connected = await asyncio.gather(
                    idle_stream(channel), stays_connected(address)
                )
            assert response == b"2"
            assert connected
        finally:
            await service.stop(grace=0)

    asyncio.run(scenario())


def test_the_same_stream_and_connection_die_on_a_server_with_grpc_default_ping_policy() -> None:
    """Shows the test above means something: the clients do keep pinging (five pings and more),
    and gRPC's default server policy answers GOAWAY too_many_pings."""

    async def scenario() -> None:
        server = aio.server()
        server.add_generic_rpc_handlers((SINK,))
        address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        await server.start()
        try:
            async with aio.insecure_channel(address, options=FAST.client_options()) as channel:
                response, connected = await asyncio.gather(
                    idle_stream(channel), stays_connected(address), return_exceptions=True
                )
            assert isinstance(response, aio.AioRpcError)
            assert response.code() == grpc.StatusCode.UNAVAILABLE
            assert "too many pings" in (response.details() or "").lower()
            assert connected is False
        finally:
            await server.stop(grace=0)

    asyncio.run(scenario())
