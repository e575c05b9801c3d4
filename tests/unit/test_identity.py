"""User tokens: signature, algorithm and expiry are checked before anything else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from marketsync.errors import PermissionDenied, Unauthenticated
from marketsync.identity import Identity, issue_user_token, verify_user_token

SECRET = "s" * 64  # long enough for HS512 too
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def claims(**changes: object) -> dict[str, object]:
    base = {"sub": "1", "org": "2", "role": "admin", "sid": "3"}
    base["iat"] = int(datetime.now(UTC).timestamp())
    base["exp"] = base["iat"] + 3600  # type: ignore[operator]
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
