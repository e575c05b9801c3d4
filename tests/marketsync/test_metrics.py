"""The kit's gRPC metrics on a real server on loopback, called through a real internal channel:
every call is counted once, by the status it ended with, on both sides, streams included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio
from prometheus_client import REGISTRY

from marketsync.errors import InvalidArgument
from marketsync.identity import Identity
from marketsync.interceptors import AccessInterceptor
from marketsync.keys import PublicKeys
from marketsync.server import create_server
from marketsync.service_auth import ServiceCredential, internal_channel
from tests import grpc_bytes

SERVICE = "test.v1.Counted"
OPEN = frozenset({f"/{SERVICE}/{name}" for name in ("Echo", "Refuse", "Chat")})


async def refuse_sessions(identity: Identity) -> Identity:
    raise AssertionError("no call here gets as far as a session check")


async def echo(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def refuse(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
    raise InvalidArgument("not this one")


async def chat(
    requests: AsyncIterator[bytes], context: aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


def count(side: str, method: str, code: str) -> float:
    labels = {"service": SERVICE, "method": method, "code": code}
    return REGISTRY.get_sample_value(f"marketsync_grpc_{side}_handled_total", labels) or 0.0


async def counted(side: str, method: str, code: str, expected: float) -> bool:
    """Whether the count reaches `expected`; a client's count lands just after its call ends."""
    for _ in range(200):
        if count(side, method, code) >= expected:
            return True
        await asyncio.sleep(0.01)
    return False


def test_every_call_is_counted_once_by_its_final_status_on_both_sides() -> None:
    calls = [
        ("Echo", "OK"),
        ("Refuse", "INVALID_ARGUMENT"),
        ("Guarded", "UNAUTHENTICATED"),
        ("Chat", "OK"),
    ]
    before = {
        (side, method, code): count(side, method, code)
        for side in ("server", "client")
        for method, code in calls
    }

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(echo),
                "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
                "Guarded": grpc.unary_unary_rpc_method_handler(echo),
                "Chat": grpc.stream_stream_rpc_method_handler(chat),
            },
        )
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=PublicKeys(),
                check_session=refuse_sessions,
                open_methods=OPEN,
            ),
            service_names=[SERVICE],
            register=lambda server: server.add_generic_rpc_handlers((handler,)),
        )
        await service.start()
        credential = ServiceCredential(Ed25519PrivateKey.generate(), "sync")
        channel = internal_channel(f"127.0.0.1:{service.port}", credential)
        try:
            assert await grpc_bytes.unary_unary(channel, f"/{SERVICE}/Echo")(b"hi") == b"hi"
            for method, code in (("Refuse", "INVALID_ARGUMENT"), ("Guarded", "UNAUTHENTICATED")):
                try:
                    await grpc_bytes.unary_unary(channel, f"/{SERVICE}/{method}")(b"hi")
                except aio.AioRpcError as exc:
                    assert exc.code().name == code
            stream = grpc_bytes.stream_stream(channel, f"/{SERVICE}/Chat")()
            await stream.write(b"one")
            assert await stream.read() == b"one"
            # Not counted while the stream is open; counted once it ends.
            assert count("server", "Chat", "OK") == before[("server", "Chat", "OK")]
            await stream.done_writing()
            assert await stream.read() == aio.EOF
            for method, code in calls:
                for side in ("server", "client"):
                    expected = before[(side, method, code)] + 1
                    assert await counted(side, method, code, expected), (side, method, code)
                    assert count(side, method, code) == expected, (side, method, code)
        finally:
            await channel.close()
            await service.stop(grace=0)

    asyncio.run(main())
    seconds = REGISTRY.get_sample_value(
        "marketsync_grpc_client_handling_seconds_count", {"service": SERVICE, "method": "Chat"}
    )
    assert seconds is not None and seconds >= 1
