"""Encryption at rest of marketplace credentials (AES-256-GCM).

CREDENTIALS_ENCRYPTION_KEY holds one or more keys, comma-separated, each `key_id:base64key`
(a 32-byte key in standard or URL-safe base64; key ids are 1-32 characters of letters, digits,
`_` or `-`). The first key seals everything written from now on; the others only open rows
sealed earlier. A single bare `base64key` is the key id `default`. To rotate: put a new key in
front (`k2:NEW,k1:OLD`); rows move to the new key when re-saved; drop the old key only once no row
names it (`SELECT DISTINCT key_id FROM api_credentials`).

Every row is sealed with its own random 96-bit nonce, and the associated data binds the
ciphertext to the organization and marketplace it belongs to: a row copied to another
organization or marketplace does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
DEFAULT_KEY_ID = "default"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class VaultError(Exception):
    """A sealed value cannot be opened with the configured keys."""


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


class Vault:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("CREDENTIALS_ENCRYPTION_KEY holds no key")
        self._current_key_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        if len(self._ciphers) != len(keys):
            raise ValueError("CREDENTIALS_ENCRYPTION_KEY names the same key id twice")

    @classmethod
    def from_setting(cls, setting: str) -> Vault:
        entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
        if len(entries) == 1 and ":" not in entries[0]:
            return cls([(DEFAULT_KEY_ID, _decode_key(entries[0], DEFAULT_KEY_ID))])
        keys = []
        for entry in entries:
            key_id, separator, encoded = entry.partition(":")
            if not separator or not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    "CREDENTIALS_ENCRYPTION_KEY entries must be key_id:base64key with key ids of "
                    "1-32 letters, digits, _ or -"
                )
            keys.append((key_id, _decode_key(encoded, key_id)))
        return cls(keys)

    @property
    def current_key_id(self) -> str:
        return self._current_key_id

    def seal(self, plaintext: bytes, associated_data: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self._current_key_id].encrypt(nonce, plaintext, associated_data)
        return Sealed(self._current_key_id, nonce, ciphertext)

    def open(self, sealed: Sealed, associated_data: bytes) -> bytes:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise VaultError(f"no configured key has the id {sealed.key_id!r}")
        try:
            return cipher.decrypt(sealed.nonce, sealed.ciphertext, associated_data)
        except InvalidTag as exc:
            raise VaultError(
                f"the value does not open with key {sealed.key_id!r} for this owner"
            ) from exc


def generate_key() -> str:
    """A fresh key in the setting's base64 form."""
    return base64.b64encode(AESGCM.generate_key(bit_length=KEY_BYTES * 8)).decode("ascii")


def _decode_key(encoded: str, key_id: str) -> bytes:
    try:
        key = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"CREDENTIALS_ENCRYPTION_KEY key {key_id!r} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"CREDENTIALS_ENCRYPTION_KEY key {key_id!r} is {len(key)} bytes; AES-256 needs "
            f"{KEY_BYTES}"
        )
    return key
