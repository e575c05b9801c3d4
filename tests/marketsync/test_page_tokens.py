"""Signed page tokens (no database)."""

from __future__ import annotations

import pytest

from marketsync.errors import InvalidArgument
from marketsync.page_tokens import PageTokenSigner

KEY = b"k" * 32
BINDING = {"organization_id": 7, "marketplace": ""}
PAYLOAD = {"sku": "SKU-1", "created_at": "2025-01-01T00:00:00.000000Z"}


def test_a_token_reads_back_its_payload() -> None:
    signer = PageTokenSigner(KEY)
    assert signer.decode(signer.encode(PAYLOAD, BINDING), BINDING) == PAYLOAD


def test_a_token_is_refused_under_another_binding() -> None:
    signer = PageTokenSigner(KEY)
    token = signer.encode(PAYLOAD, BINDING)
    for other in ({**BINDING, "organization_id": 8}, {**BINDING, "marketplace": "amazon"}):
        with pytest.raises(InvalidArgument, match="page_token"):
            signer.decode(token, other)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = PageTokenSigner(b"x" * 32).encode(PAYLOAD, BINDING)
    with pytest.raises(InvalidArgument, match="page_token"):
        PageTokenSigner(KEY).decode(token, BINDING)


def test_every_single_character_change_is_refused() -> None:
    signer = PageTokenSigner(KEY)
    token = signer.encode(PAYLOAD, BINDING)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        altered = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(InvalidArgument):
            signer.decode(altered, BINDING)


@pytest.mark.parametrize(
    "token", ["", "x", "a.b", "a.b.c", "....", "é.é", "eyJza3UiOiJ4In0.", "A" * 5000]
)
def test_made_up_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        PageTokenSigner(KEY).decode(token, BINDING)


def test_a_short_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokenSigner(b"short")
