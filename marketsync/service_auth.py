"""How services prove themselves to each other.

A calling service sends `x-marketsync-service: <jwt>`: an HS256 token signed with
INTERNAL_SERVICE_KEY, audience `marketsync-internal`, naming the caller in `iss`, valid for five
minutes. User tokens are signed with JWT_SECRET (a different key, enforced at start-up) and
carry no audience, so no user token can pass as a service credential. Envoy strips the header
from outside requests and never routes internal services. In Kubernetes the key is a Secret
mounted only into the services' pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt
from grpc import aio

from marketsync.config import MAX_MESSAGE_BYTES
from marketsync.errors import Unauthenticated
from marketsync.identity import SIGNING_ALGORITHM
from marketsync.keepalive import DEFAULT_KEEPALIVE, Keepalive

SERVICE_METADATA_KEY = "x-marketsync-service"
AUDIENCE = "marketsync-internal"
CREDENTIAL_LIFETIME_SECONDS = 300
# Renew well before expiry so a credential never expires in flight.
RENEW_AFTER_SECONDS = 240


class ServiceCredential:
    """Mints (and reuses for a while) the caller's service token."""

    def __init__(self, key: str, service_name: str) -> None:
        self._key = key
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
            self._token = jwt.encode(claims, self._key, algorithm=SIGNING_ALGORITHM)
            self._minted_at = now
        return self._token


def verify_service_token(key: str, token: str) -> str:
    """The calling service's name, or Unauthenticated."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[SIGNING_ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("this internal call needs a valid service credential") from exc
    return str(claims["iss"])


class _WithCredential:
    def __init__(self, credential: ServiceCredential) -> None:
        self._credential = credential

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()))
        metadata.add(SERVICE_METADATA_KEY, self._credential.token())
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
        return await continuation(self._details(client_call_details), request_iterator)


def internal_channel(
    address: str, credential: ServiceCredential, *, keepalive: Keepalive = DEFAULT_KEEPALIVE
) -> aio.Channel:
    """A channel to another service that presents this service's credential on every call."""
    options: Sequence[tuple[str, int]] = (
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # The servers accept exactly this ping policy (see marketsync.keepalive); pinging on
        # our own terms would get long idle streams cut off with GOAWAY too_many_pings.
        *keepalive.client_options(),
    )
    return aio.insecure_channel(
        address,
        options=options,
        interceptors=[kind(credential) for kind in (_UnaryUnary, _StreamUnary)],
    )
