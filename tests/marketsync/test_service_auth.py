"""Service credentials: each service signs its own with its own key, and may speak only for
itself; a verifier holds only public keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from marketsync.errors import Unauthenticated
from marketsync.identity import Identity, issue_user_token
from marketsync.interceptors import AccessInterceptor
from marketsync.keys import PublicKeys, key_id, public_key_text
from marketsync.server import Service, create_server
from marketsync.service_auth import (
    AUDIENCE,
    ServiceCredential,
    internal_channel,
    verify_service_token,
)
from tests import grpc_bytes

SYNC = Ed25519PrivateKey.generate()
CATALOG = Ed25519PrivateKey.generate()
CALLERS = PublicKeys([("sync", SYNC.public_key()), ("catalog", CATALOG.public_key())])


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": "sync", "aud": AUDIENCE, "iat": now, "exp": now + 300, **changes}


def signed(key: Ed25519PrivateKey, kid_of: Ed25519PrivateKey, **changes: object) -> str:
    kid = key_id(kid_of.public_key())
    return jwt.encode(claims(**changes), key, algorithm="EdDSA", headers={"kid": kid})


def test_a_service_credential_names_its_service() -> None:
    assert verify_service_token(CALLERS, ServiceCredential(SYNC, "sync").token()) == "sync"
    assert verify_service_token(CALLERS, ServiceCredential(CATALOG, "catalog").token()) == "catalog"


def test_a_credential_is_reused_until_it_nears_expiry() -> None:
    credential = ServiceCredential(SYNC, "sync")
    assert credential.token() == credential.token()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(ServiceCredential(CATALOG, "sync").token(), id="catalog's key claiming sync"),
        pytest.param(signed(CATALOG, SYNC), id="catalog's key naming sync's key id"),
        pytest.param(
            ServiceCredential(Ed25519PrivateKey.generate(), "sync").token(), id="unknown key"
        ),
        pytest.param(
            jwt.encode(claims(), CATALOG, algorithm="EdDSA"), id="catalog's key, no key id"
        ),
        pytest.param(
            jwt.encode(
                claims(),
                public_key_text(SYNC.public_key()),
                algorithm="HS256",
                headers={"kid": key_id(SYNC.public_key())},
            ),
            id="HS256 keyed with sync's public key",
        ),
        pytest.param(signed(SYNC, SYNC, aud="someone-else"), id="another audience"),
        pytest.param(signed(SYNC, SYNC, exp=int(time.time()) - 60), id="expired"),
        pytest.param(
            # PyJWT signs alg none with no key; its annotations want one.
            jwt.encode(
                claims(),
                None,  # type: ignore[arg-type]
                algorithm="none",
                headers={"kid": key_id(SYNC.public_key())},
            ),
            id="alg none",
        ),
        pytest.param("", id="nothing"),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_a_credential_not_signed_by_the_service_it_names_is_refused(token: str) -> None:
    with pytest.raises(Unauthenticated):
        verify_service_token(CALLERS, token)


@pytest.mark.parametrize("key", [SYNC, "j" * 40], ids=["EdDSA with sync's key", "HS256"])
def test_a_user_token_is_no_service_credential(key: Ed25519PrivateKey | str) -> None:
    user_token, _ = issue_user_token(
        key, user_id=1, organization_id=1, role="owner", session_id=1, now=datetime.now(UTC)
    )
    with pytest.raises(Unauthenticated):
        verify_service_token(CALLERS, user_token)


SECRETS_SERVICE = "test.v1.SecretsInternalService"
READ_SECRETS = f"/{SECRETS_SERVICE}/Read"


async def refuse(identity: Identity) -> Identity:
    raise AssertionError("an internal call is not a user's")


async def read_secrets(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return b"every tenant's secrets"


@pytest.fixture
def secrets_address() -> Iterator[tuple[asyncio.AbstractEventLoop, str]]:
    """A server whose internal method only sync may call, as auth's GetMarketplaceCredentials."""
    loop = asyncio.new_event_loop()
    handler = grpc.method_handlers_generic_handler(
        SECRETS_SERVICE, {"Read": grpc.unary_unary_rpc_method_handler(read_secrets)}
    )

    async def start() -> Service:
        service = create_server(
            host="127.0.0.1",
            port=0,
            access=AccessInterceptor(
                user_token_keys="j" * 40,
                service_keys=CALLERS,
                check_session=refuse,
                internal_callers={READ_SECRETS: frozenset({"sync"})},
            ),
            service_names=[SECRETS_SERVICE],
            register=lambda server: server.add_generic_rpc_handlers((handler,)),
        )
        await service.start()
        return service

    service = loop.run_until_complete(start())
    yield loop, f"127.0.0.1:{service.port}"
    loop.run_until_complete(service.stop(grace=0))
    loop.close()


def _read_as(
    where: tuple[asyncio.AbstractEventLoop, str], key: Ed25519PrivateKey, name: str
) -> grpc.StatusCode | bytes:
    loop, address = where

    async def call() -> grpc.StatusCode | bytes:
        async with internal_channel(address, ServiceCredential(key, name)) as channel:
            try:
                return bytes(await grpc_bytes.unary_unary(channel, READ_SECRETS)(b"", timeout=10))
            except aio.AioRpcError as exc:
                return exc.code()

    return loop.run_until_complete(call())


def test_only_the_listed_caller_passes_the_gate_and_no_one_can_claim_its_name(
    secrets_address: tuple[asyncio.AbstractEventLoop, str],
) -> None:
    assert _read_as(secrets_address, SYNC, "sync") == b"every tenant's secrets"
    assert _read_as(secrets_address, CATALOG, "sync") == grpc.StatusCode.UNAUTHENTICATED
    assert _read_as(secrets_address, CATALOG, "catalog") == grpc.StatusCode.PERMISSION_DENIED
    stranger = Ed25519PrivateKey.generate()
    assert _read_as(secrets_address, stranger, "sync") == grpc.StatusCode.UNAUTHENTICATED
