"""Opaque, signed page tokens.

A token carries a small JSON payload (where the next page starts) and an HMAC-SHA256 over that
payload together with a binding: whatever the token must not be replayed against, such as the
organization and the query's filters. The binding is not stored in the token; the reader passes
the binding of the request at hand, so a token from another organization or another query, an
altered one or a made-up one fails the check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from marketsync.errors import InvalidArgument

MIN_KEY_BYTES = 16
MAX_TOKEN_CHARS = 2_048
_INVALID = "page_token is not valid for this request; start again without a page_token"


def derive_key(secret: str, purpose: str) -> bytes:
    """A page-token key from a service secret, distinct for each purpose, so no new setting."""
    return hmac.new(secret.encode(), f"page-tokens:{purpose}".encode(), "sha256").digest()


class PageTokenSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a page token key needs at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def encode(self, payload: Mapping[str, Any], binding: Mapping[str, Any]) -> str:
        body = _canonical_json(payload)
        return f"{_b64encode(body)}.{_b64encode(self._signature(body, binding))}"

    def decode(self, token: str, binding: Mapping[str, Any]) -> dict[str, Any]:
        """The payload of a token this signer issued for this binding; InvalidArgument if not."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise InvalidArgument(_INVALID)
        body_text, signature_text = token.split(".")
        try:
            body = _b64decode(body_text)
            signature = _b64decode(signature_text)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument(_INVALID) from exc
        if not hmac.compare_digest(signature, self._signature(body, binding)):
            raise InvalidArgument(_INVALID)
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise InvalidArgument(_INVALID)
        return payload

    def _signature(self, body: bytes, binding: Mapping[str, Any]) -> bytes:
        message = _canonical_json(binding) + b"\n" + body
        return hmac.new(self._key, message, hashlib.sha256).digest()


def _canonical_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict: only the one spelling `_b64encode` produces decodes, so no altered token passes."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data
