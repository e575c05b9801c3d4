"""User tokens and the verified identity a handler receives.

A user token is a JWT carrying `sub` (user), `org`, `role`, `sid` (session), `iat` and `exp`,
signed in one of two modes (JWT_ALGORITHM):
- EdDSA: auth alone holds the private key (JWT_PRIVATE_KEY); every service verifies with auth's
  public keys (JWT_PUBLIC_KEYS), found by the token's `kid`. A service other than auth cannot
  mint a token, so one compromised service does not make every user's identity forgeable.
- HS256: JWT_SECRET, as it is, is the HMAC key; every service holding it can also mint tokens.
Verification pins the mode's algorithm, so `alg: none`, HS256 signed with a public key and any
other algorithm are refused before the signature is even considered.
"""

from __future__ import annotations

import contextvars
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from marketsync.errors import PermissionDenied, Unauthenticated
from marketsync.keys import PublicKeys, key_id

HS256: Final = "HS256"
EDDSA: Final = "EdDSA"
TOKEN_LIFETIME = timedelta(hours=24)
# Tolerated difference between the clocks of the replica that issued a token and the one reading.
CLOCK_SKEW_SECONDS = 60
ROLES = ("viewer", "member", "admin", "owner")  # weakest first: index is the rank


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as verified from a token and confirmed by the session and member rows."""

    user_id: int
    organization_id: int
    role: str
    session_id: int

    def require_role(self, minimum: str) -> None:
        if role_rank(self.role) < role_rank(minimum):
            raise PermissionDenied(
                f"this action needs the {minimum} role or stronger; you are {self.role}"
            )


def role_rank(role: str) -> int:
    return ROLES.index(role)


# How user tokens are checked: JWT_SECRET (HS256) or auth's public keys (EdDSA).
UserTokenKeys = str | PublicKeys
# How auth signs them: JWT_SECRET (HS256) or its private key (EdDSA).
UserTokenSigningKey = str | Ed25519PrivateKey


def issue_user_token(
    key: UserTokenSigningKey,
    *,
    user_id: int,
    organization_id: int,
    role: str,
    session_id: int,
    now: datetime,
) -> tuple[str, datetime]:
    expires_at = now + TOKEN_LIFETIME
    claims = {
        "sub": str(user_id),
        "org": str(organization_id),
        "role": role,
        "sid": str(session_id),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if isinstance(key, Ed25519PrivateKey):
        headers = {"kid": key_id(key.public_key())}
        return jwt.encode(claims, key, algorithm=EDDSA, headers=headers), expires_at
    return jwt.encode(claims, key, algorithm=HS256), expires_at


class VerifiedTokens:
    """`verify_user_token` with memory: a token whose signature was verified is known by its
    exact text until it expires, so a client's every request after its first costs a lookup,
    not a signature check (an eighth of a catalog read's CPU). Revocation is not this cache's
    business: the session check, made on every request, answers that. Holds at most `capacity`
    tokens, the least recently used leaving first."""

    def __init__(self, keys: UserTokenKeys, capacity: int = 10_000) -> None:
        self._keys = keys
        self._capacity = capacity
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()

    def verify(self, token: str) -> Identity:
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            self._verified.move_to_end(token)
            return known[0]
        identity, expires_at = _verified_claims(self._keys, token)
        self._verified[token] = (identity, expires_at)
        if len(self._verified) > self._capacity:
            self._verified.popitem(last=False)
        return identity


def verify_user_token(keys: UserTokenKeys, token: str) -> Identity:
    """Check signature, algorithm and expiry; the session itself is checked by the caller."""
    return _verified_claims(keys, token)[0]


def _verified_claims(keys: UserTokenKeys, token: str) -> tuple[Identity, float]:
    """The token's identity and expiry (epoch seconds), once its signature, algorithm, claims
    and expiry are checked."""
    try:
        key, algorithm = _verification_key(keys, token)
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"require": ["sub", "org", "role", "sid", "iat", "exp"]},
        )
        identity = Identity(
            user_id=int(claims["sub"]),
            organization_id=int(claims["org"]),
            role=str(claims["role"]),
            session_id=int(claims["sid"]),
        )
        issued_at, expires_at = float(claims["iat"]), float(claims["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired; log in again") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise Unauthenticated("the token is not valid; log in again") from exc
    ids = (identity.user_id, identity.organization_id, identity.session_id)
    issued_in_future = issued_at > utcnow().timestamp() + CLOCK_SKEW_SECONDS
    if identity.role not in ROLES or issued_in_future or not all(0 < i < 2**63 for i in ids):
        raise Unauthenticated("the token is not valid; log in again")
    return identity, expires_at


def _verification_key(keys: UserTokenKeys, token: str) -> tuple[str | Ed25519PublicKey, str]:
    """The key the token must be signed with and its algorithm, both fixed by the settings."""
    if isinstance(keys, str):
        return keys, HS256
    found = keys.find(jwt.get_unverified_header(token).get("kid"))
    if found is None:
        raise jwt.InvalidTokenError("the token names no key of auth's")
    return found[1], EDDSA


def utcnow() -> datetime:
    return datetime.now(UTC)


_current_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar("identity")


def current_identity() -> Identity:
    """The verified caller of the RPC being handled; set only by the authentication interceptor."""
    try:
        return _current_identity.get()
    except LookupError as exc:
        raise Unauthenticated("this call needs a bearer token") from exc


def bind_identity(identity: Identity) -> contextvars.Token[Identity]:
    return _current_identity.set(identity)
