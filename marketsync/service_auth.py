"""How services prove themselves to each other.

A calling service sends `x-marketsync-service: <jwt>`: an EdDSA token signed with the caller's
own Ed25519 private key (SERVICE_PRIVATE_KEY, which no other service holds), its key id in
`kid`, the caller's name in `iss`, audience `marketsync-internal`, valid for five minutes. The
called service holds only its callers' public keys (SERVICE_PUBLIC_KEYS, `name:key`): it finds
the key by `kid` and accepts the credential only if `iss` names that key's holder, so a service
can speak only for itself and the per-method caller lists mean what they say. User tokens carry
no audience and are signed with other keys, so no user token can pass as a service credential.
Envoy strips the header from outside requests and never routes internal services.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from marketsync import tracing
from marketsync.config import MAX_MESSAGE_BYTES
from marketsync.errors import Unauthenticated
from marketsync.identity import EDDSA
from marketsync.keepalive import DEFAULT_KEEPALIVE, Keepalive
from marketsync.keys import PublicKeys, key_id
from marketsync.logs import REQUEST_ID_METADATA_KEY, current_request_id
from marketsync.metrics import client_interceptors

# Every address the name resolves to (a headless Service: each ready pod), calls spread over them
# one by one; a replica reporting NOT_SERVING (it is draining) gets no new call.
BALANCING_SERVICE_CONFIG = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
)
# Targets naming their resolver; anything else is `host:port`, resolved by DNS.
_GRPC_TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
SERVICE_METADATA_KEY = "x-marketsync-service"
AUDIENCE = "marketsync-internal"
CREDENTIAL_LIFETIME_SECONDS = 300
# Renew well before expiry so a credential never expires in flight.
RENEW_AFTER_SECONDS = 240


class ServiceCredential:
    """Mints (and reuses for a while) the caller's service token."""

    def __init__(self, private_key: Ed25519PrivateKey, service_name: str) -> None:
        self._key = private_key
        self._headers = {"kid": key_id(private_key.public_key())}
        self._service_name = service_name
        self._token = ""
        self._minted_at = 0.0

    def token(self) -> str:
        now = time.time()
        if now - self._minted_at > RENEW_AFTER_SECONDS:
            claims = {
                "iss": self._service_name,
                "aud": AUDIENCE,
                "iat": int(now),
                "exp": int(now) + CREDENTIAL_LIFETIME_SECONDS,
            }
            self._token = jwt.encode(claims, self._key, algorithm=EDDSA, headers=self._headers)
            self._minted_at = now
        return self._token


def verify_service_token(callers: PublicKeys, token: str) -> str:
    """The calling service's name, proven by its signature, or Unauthenticated."""
    try:
        found = callers.find(jwt.get_unverified_header(token).get("kid"))
        if found is None:
            raise Unauthenticated(
                "the service credential is signed with a key this service does not know"
            )
        caller, public_key = found
        jwt.decode(
            token,
            public_key,
            algorithms=[EDDSA],
            audience=AUDIENCE,
            issuer=caller,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("this internal call needs a valid service credential") from exc
    return caller


class _WithCredential:
    def __init__(self, credential: ServiceCredential) -> None:
        self._credential = credential

    def _details(
        self, details: aio.ClientCallDetails, *, streaming: bool = False
    ) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()))
        metadata.add(SERVICE_METADATA_KEY, self._credential.token())
        if request_id := current_request_id():
            metadata.add(REQUEST_ID_METADATA_KEY, request_id)
        if streaming:
            # Unary calls get theirs from the tracing interceptor (see marketsync.tracing).
            tracing.inject_context(metadata)
        return aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under the first call kind it implements, so each kind of
# call needs an interceptor object of its own.
class _UnaryUnary(_WithCredential, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Any],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_WithCredential, aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Any],
        client_call_details: aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(
            self._details(client_call_details, streaming=True), request_iterator
        )


class _StreamStream(_WithCredential, aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Any],
        client_call_details: aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(
            self._details(client_call_details, streaming=True), request_iterator
        )


def grpc_target(address: str) -> str:
    """`host:port` as a DNS target (every address of the name), a full target as it is."""
    return address if address.startswith(_GRPC_TARGET_SCHEMES) else f"dns:///{address}"


def internal_channel(
    address: str, credential: ServiceCredential, *, keepalive: Keepalive = DEFAULT_KEEPALIVE
) -> aio.Channel:
    """A channel to another service that presents this service's credential on every call.

    `address` is `host:port` (resolved by DNS, every address) or a full gRPC target.
    """
    options: Sequence[tuple[str, int | str]] = (
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # The servers accept exactly this ping policy (see marketsync.keepalive); pinging on
        # our own terms would get long idle streams cut off with GOAWAY too_many_pings.
        *keepalive.client_options(),
        ("grpc.service_config", BALANCING_SERVICE_CONFIG),
    )
    return aio.insecure_channel(
        grpc_target(address),
        options=options,
        interceptors=[
            *client_interceptors(),
            *tracing.client_interceptors(),
            *(kind(credential) for kind in (_UnaryUnary, _StreamUnary, _StreamStream)),
        ],
    )
