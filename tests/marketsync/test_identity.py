"""User tokens: signature, algorithm and expiry are checked before anything else, in both modes:
HS256 with JWT_SECRET, and EdDSA where only auth's private key signs."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketsync.errors import PermissionDenied, Unauthenticated
from marketsync.identity import Identity, VerifiedTokens, issue_user_token, verify_user_token
from marketsync.keys import PublicKeys, key_id, private_key_text, public_key_text

SECRET = "s" * 64  # long enough for HS512 too
NOW = datetime(2026, 1, 1, tzinfo=UTC)
AUTH_KEY = Ed25519PrivateKey.generate()
AUTH_PUBLIC_KEYS = PublicKeys([("auth", AUTH_KEY.public_key())])


def claims(**changes: object) -> dict[str, object]:
    now = int(datetime.now(UTC).timestamp())
    base = {"sub": "1", "org": "2", "role": "admin", "sid": "3", "iat": now, "exp": now + 3600}
    return {**base, **changes}


def test_an_issued_token_verifies_to_its_identity() -> None:
    token, expires_at = issue_user_token(
        SECRET, user_id=1, organization_id=2, role="admin", session_id=3, now=datetime.now(UTC)
    )
    assert verify_user_token(SECRET, token) == Identity(1, 2, "admin", 3)
    assert expires_at - datetime.now(UTC) > timedelta(hours=23)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(jwt.encode(claims(), "another key" * 4, algorithm="HS256"), id="other key"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="other algorithm"),
        pytest.param(jwt.encode(claims(exp=1), SECRET, algorithm="HS256"), id="expired"),
        pytest.param(jwt.encode(claims(role="god"), SECRET, algorithm="HS256"), id="unknown role"),
        pytest.param(jwt.encode(claims(sub="x"), SECRET, algorithm="HS256"), id="bad subject"),
        pytest.param(jwt.encode(claims(sub="0"), SECRET, algorithm="HS256"), id="zero subject"),
        pytest.param(
            jwt.encode(claims(org=str(2**70)), SECRET, algorithm="HS256"), id="org past int64"
        ),
        pytest.param(
            jwt.encode(
                claims(iat=int(datetime.now(UTC).timestamp()) + 3600), SECRET, algorithm="HS256"
            ),
            id="issued in the future",
        ),
        pytest.param(
            jwt.encode(
                {k: v for k, v in claims().items() if k != "sid"}, SECRET, algorithm="HS256"
            ),
            id="no session",
        ),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_bad_tokens_are_unauthenticated(token: str) -> None:
    with pytest.raises(Unauthenticated):
        verify_user_token(SECRET, token)


def test_alg_none_is_refused() -> None:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims())}."
    with pytest.raises(Unauthenticated):
        verify_user_token(SECRET, unsigned)


def test_roles_rank_weakest_first() -> None:
    member = Identity(1, 2, "member", 3)
    member.require_role("viewer")
    member.require_role("member")
    with pytest.raises(PermissionDenied, match="admin role"):
        member.require_role("admin")


def _issue(key: str | Ed25519PrivateKey) -> str:
    token, _ = issue_user_token(
        key, user_id=1, organization_id=2, role="admin", session_id=3, now=datetime.now(UTC)
    )
    return token


def test_an_eddsa_token_names_auth_key_and_verifies_with_the_public_key_alone() -> None:
    token = _issue(AUTH_KEY)
    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA",
        "typ": "JWT",
        "kid": key_id(AUTH_KEY.public_key()),
    }
    assert verify_user_token(AUTH_PUBLIC_KEYS, token) == Identity(1, 2, "admin", 3)


def test_while_auth_key_is_replaced_tokens_of_both_keys_verify() -> None:
    new_key = Ed25519PrivateKey.generate()
    both = PublicKeys([("auth", new_key.public_key()), ("auth", AUTH_KEY.public_key())])
    for key in (new_key, AUTH_KEY):
        assert verify_user_token(both, _issue(key)).user_id == 1


OTHER_KEY = Ed25519PrivateKey.generate()
AUTH_KID = {"kid": key_id(AUTH_KEY.public_key())}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_issue(OTHER_KEY), id="another key"),
        pytest.param(
            jwt.encode(claims(), OTHER_KEY, algorithm="EdDSA", headers=AUTH_KID),
            id="another key naming auth's key id",
        ),
        pytest.param(jwt.encode(claims(), AUTH_KEY, algorithm="EdDSA"), id="no key id"),
        pytest.param(_issue(SECRET), id="HS256"),
        pytest.param(
            jwt.encode(claims(), public_key_text(AUTH_KEY.public_key()), "HS256", headers=AUTH_KID),
            id="HS256 keyed with auth's public key",
        ),
        pytest.param(
            jwt.encode(claims(exp=1), AUTH_KEY, algorithm="EdDSA", headers=AUTH_KID),
            id="expired",
        ),
    ],
)
def test_in_eddsa_mode_only_auth_private_key_makes_a_token(token: str) -> None:
    with pytest.raises(Unauthenticated):
        verify_user_token(AUTH_PUBLIC_KEYS, token)


def test_in_hs256_mode_an_eddsa_token_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        verify_user_token(SECRET, _issue(AUTH_KEY))
    with pytest.raises(Unauthenticated):
        verify_user_token(private_key_text(AUTH_KEY), _issue(AUTH_KEY))


def test_a_verified_token_is_known_by_its_text_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    tokens = VerifiedTokens(AUTH_PUBLIC_KEYS)
    token = jwt.encode(
        claims(exp=int(time.time()) + 2),
        AUTH_KEY,
        algorithm="EdDSA",
        headers={"kid": key_id(AUTH_KEY.public_key())},
    )
    assert tokens.verify(token) == tokens.verify(token) == Identity(1, 2, "admin", 3)
    assert decoded == [token], "the second request's signature was not checked again"
    # The same claims under another signature are another text: checked, and refused.
    forged = token.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(b"x" * 64).decode()
    with pytest.raises(Unauthenticated, match="not valid"):
        tokens.verify(forged.rstrip("="))
    time.sleep(2.1)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(token)


def test_verified_tokens_are_kept_up_to_their_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = VerifiedTokens(SECRET, capacity=2)
    first, second, third = (
        jwt.encode(claims(sid=str(n)), SECRET, algorithm="HS256") for n in (1, 2, 3)
    )
    for token in (first, second, third):
        tokens.verify(token)

    def no_decode(*_: object, **__: object) -> object:
        raise AssertionError("decoded again")

    monkeypatch.setattr(jwt, "decode", no_decode)
    assert tokens.verify(third).session_id == 3
    assert tokens.verify(second).session_id == 2
    with pytest.raises(AssertionError, match="decoded again"):
        tokens.verify(first)  # the least recently used left first
