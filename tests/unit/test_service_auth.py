"""Service credentials: only a token signed with the internal key, for the internal audience."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketsync.errors import Unauthenticated
from marketsync.identity import issue_user_token
from marketsync.service_auth import ServiceCredential, verify_service_token

INTERNAL_KEY = "i" * 40
JWT_SECRET = "j" * 40


def test_a_service_credential_names_its_service() -> None:
    assert (
        verify_service_token(INTERNAL_KEY, ServiceCredential(INTERNAL_KEY, "sync").token())
        == "sync"
    )


def test_a_credential_is_reused_until_it_nears_expiry() -> None:
    credential = ServiceCredential(INTERNAL_KEY, "sync")
    assert credential.token() == credential.token()


def test_a_user_token_is_no_service_credential_even_with_the_same_key() -> None:
    user_token, _ = issue_user_token(
        INTERNAL_KEY,
        user_id=1,
        organization_id=1,
        role="owner",
        session_id=1,
        now=datetime.now(UTC),
    )
    with pytest.raises(Unauthenticated):
        verify_service_token(INTERNAL_KEY, user_token)


def test_a_credential_signed_with_another_key_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        verify_service_token(INTERNAL_KEY, ServiceCredential(JWT_SECRET, "sync").token())
    with pytest.raises(Unauthenticated):
        verify_service_token(INTERNAL_KEY, "")
