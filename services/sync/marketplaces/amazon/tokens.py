"""Login with Amazon access tokens: one process-wide cache, and sp_api's token client using it.

A token is cached by (token URL, client id, hash of client secret and refresh token), kept
until shortly before its `expires_in`, fetched by one caller at a time, and forgotten when
SP-API refuses it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sp_api.auth import AccessTokenClient, AccessTokenResponse

TOKEN_RENEWAL_MARGIN_SECONDS = 60.0


class AccessTokenCache:
    """Access tokens per (token URL, client, refresh token), refreshed one caller at a time.

    It replaces sp_api's module-global cache, which is keyed by the refresh token alone, keeps
    every token for a fixed 3200 s whatever `expires_in` says, and is not safe across threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str, str], fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            token, renew_at = self._tokens.get(key, ({}, 0.0))
            if self._clock() >= renew_at:
                token = fetch()
                lifetime = float(token.get("expires_in") or 3600)
                renew_at = self._clock() + lifetime - TOKEN_RENEWAL_MARGIN_SECONDS
                with self._guard:
                    self._tokens[key] = (token, renew_at)
            return token

    def drop(self, key: tuple[str, str, str], token: dict[str, Any]) -> None:
        """Forgets the token, unless another call has replaced it already: calls made at once
        that are all refused the same token then fetch one new token, not one each."""
        with self._guard:
            if key in self._tokens and self._tokens[key][0] is token:
                del self._tokens[key]


access_tokens = AccessTokenCache()


def token_key(
    url: str, client_id: str, client_secret: str, refresh_token: str
) -> tuple[str, str, str]:
    """Whoever presents all of these got this token from LWA: an organization that knows a
    seller's app id and refresh token but not the secret never gets the cached token."""
    secret = hashlib.sha256(f"{client_secret}\0{refresh_token}".encode()).hexdigest()
    return (url, client_id, secret)


class LwaTokenClient(AccessTokenClient):  # type: ignore[misc]  # sp_api ships no types
    """sp_api's token client, pointed at the configured LWA URL and using `access_tokens`.

    sp_api gives every API client a token client of its own; it remembers the token it last
    handed out, the one to drop when the client's request is refused.
    """

    handed_out: dict[str, Any] | None = None

    @classmethod
    def url(cls) -> str:
        return f"{cls.scheme}{cls.host}{cls.path}"

    def get_auth(self) -> AccessTokenResponse:
        key = token_key(
            self.url(), self.cred.client_id, self.cred.client_secret, self.cred.refresh_token
        )
        token = access_tokens.get(key, lambda: self._request(self.url(), self.data, self.headers))
        self.handed_out = token
        return AccessTokenResponse(**token)


@lru_cache(maxsize=16)
def token_client_class(lwa_token_url: str) -> type[LwaTokenClient]:
    """An `LwaTokenClient` asking `lwa_token_url`, one class per URL (sp_api takes a class)."""
    target = urlsplit(lwa_token_url)
    attributes = {"scheme": f"{target.scheme}://", "host": target.netloc, "path": target.path}
    return type("ConfiguredLwaTokenClient", (LwaTokenClient,), attributes)
