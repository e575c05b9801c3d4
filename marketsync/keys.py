"""Ed25519 keys as settings carry them, and the ids tokens name them by.

A key is given as the base64 body of the PEM file openssl writes: one line, so it fits an
environment variable, a `--from-literal` or a ConfigMap value. The whole PEM is accepted too.

    openssl genpkey -algorithm ed25519 -out sync.pem    # private key: the body of sync.pem
    openssl pkey -in sync.pem -pubout                   # public key: the body of this output

A public key's id is its RFC 7638 thumbprint. Signers put it in the token's `kid` header, so a
verifier finds the one key that may have signed a token, and a key can be replaced while the
old one is still accepted (both listed) without trying each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_HOW_TO_MAKE = "give the base64 body of the PEM of `openssl genpkey -algorithm ed25519`"


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_der_private_key(_der(text), password=None)
    # TypeError: an encrypted key, which needs a password.
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a private key; {_HOW_TO_MAKE}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"not an Ed25519 private key; {_HOW_TO_MAKE}")
    return key


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_der_public_key(_der(text))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a public key; {_HOW_TO_MAKE} (`openssl pkey -pubout`)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def private_key_text(key: Ed25519PrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode("ascii")


def public_key_text(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint of the key's JWK."""
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(key.public_bytes_raw())}
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return _b64url(hashlib.sha256(canonical).digest())


class PublicKeys:
    """Verification keys by key id, each with the name of the one who holds its private key."""

    def __init__(self, named_keys: Iterable[tuple[str, Ed25519PublicKey]] = ()) -> None:
        self._by_id = {key_id(key): (name, key) for name, key in named_keys}

    def find(self, kid: object) -> tuple[str, Ed25519PublicKey] | None:
        return self._by_id.get(kid) if isinstance(kid, str) else None

    def key_ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def __bool__(self) -> bool:
        return bool(self._by_id)


def public_keys_from_text(text: str, holder: str) -> PublicKeys:
    """`key,key,...`, all held by `holder`; more than one while a new key replaces the old."""
    return PublicKeys((holder, public_key_from_text(key)) for key in _entries(text))


def named_public_keys_from_text(text: str) -> PublicKeys:
    """`name:key,name:key,...`; a name given twice has two keys (while one replaces the other)."""
    named = []
    for entry in _entries(text):
        name, separator, key = entry.partition(":")
        if not separator or not name.strip():
            raise ValueError(f"expected name:public-key, got {entry[:20]!r}...")
        named.append((name.strip(), public_key_from_text(key)))
    return PublicKeys(named)


def _entries(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _der(text: str) -> bytes:
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64; {_HOW_TO_MAKE}") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
