"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes, so the password is first reduced to the base64 of its SHA-256
(44 bytes, no NUL): every character of a long passphrase counts. A login for an unknown email
is compared against a dummy hash of the same cost, so both answers take the same time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets

import bcrypt

DEFAULT_ROUNDS = 12


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


class PasswordHasher:
    def __init__(self, rounds: int = DEFAULT_ROUNDS) -> None:
        self._rounds = rounds
        self._dummy_hash = self._hash_now(secrets.token_urlsafe(16))
        # bcrypt is CPU-bound: more hashes at once than cores only make every login slower.
        self._cpu = asyncio.Semaphore(os.cpu_count() or 1)

    def _hash_now(self, password: str) -> str:
        return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(self._rounds)).decode("ascii")

    async def hash(self, password: str) -> str:
        async with self._cpu:
            return await asyncio.to_thread(self._hash_now, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True if the password matches; None (no such user) costs the same and is False."""
        candidate = self._dummy_hash if password_hash is None else password_hash
        async with self._cpu:
            matches = await asyncio.to_thread(
                bcrypt.checkpw, _prehash(password), candidate.encode("ascii")
            )
        return matches and password_hash is not None
