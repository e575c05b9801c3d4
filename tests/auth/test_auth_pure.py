"""Pure pieces: email and field validation, masking, the vault, password hashing."""

from __future__ import annotations

import asyncio

import pytest

from marketsync.errors import InvalidArgument
from services.auth.accounts import normalize_email, validate_name, validate_password
from services.auth.credentials import mask, validate_fields
from services.auth.passwords import PasswordHasher
from services.auth.vault import Vault, VaultError, generate_key


@pytest.mark.parametrize(
    ("given", "stored"),
    [("Ann@Example.COM", "ann@example.com"), ("  bo@mail.example.org ", "bo@mail.example.org")],
)
def test_email_is_trimmed_and_lower_cased(given: str, stored: str) -> None:
    assert normalize_email(given) == stored


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "a b@example.com",
        "a@b@c.com",
        "nul\x00x@example.com",
    ],
)
def test_invalid_email_is_refused_naming_the_field(email: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^email: "):
        normalize_email(email)


def test_password_needs_eight_characters() -> None:
    validate_password("12345678")
    with pytest.raises(InvalidArgument, match="password: must be at least 8"):
        validate_password("1234567")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("abcdefgh", "****efgh"),
        ("abcde", "*bcde"),
        ("abcd", "****"),  # showing the last 4 of a 4-character value would show all of it
        ("ab", "**"),
        ("", ""),
    ],
)
def test_mask_keeps_only_the_last_four_characters(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_amazon_fields_default_the_marketplace_id() -> None:
    fields = {"refresh_token": "r", "lwa_app_id": "a", "lwa_client_secret": "s", "seller_id": "x"}
    assert validate_fields("amazon", fields)["marketplace_id"] == "ATVPDKIKX0DER"


def test_missing_field_is_named() -> None:
    with pytest.raises(InvalidArgument, match=r"credentials\.client_secret: is required"):
        validate_fields("walmart", {"client_id": "id", "client_secret": "  "})


def test_unknown_fields_are_named() -> None:
    with pytest.raises(InvalidArgument, match="api_key, region are not walmart"):
        validate_fields(
            "walmart", {"client_id": "i", "client_secret": "s", "region": "x", "api_key": "k"}
        )


def test_vault_opens_what_it_sealed_only_for_the_same_owner() -> None:
    vault = Vault.from_setting(generate_key())
    sealed = vault.seal(b"secret", b"org-1")
    assert sealed.key_id == "default"
    assert b"secret" not in sealed.ciphertext
    assert vault.open(sealed, b"org-1") == b"secret"
    with pytest.raises(VaultError):
        vault.open(sealed, b"org-2")


def test_vault_seals_with_the_first_key_and_opens_with_any() -> None:
    old_key, new_key = generate_key(), generate_key()
    sealed_with_old = Vault.from_setting(f"old:{old_key}").seal(b"v", b"ad")
    rotated = Vault.from_setting(f"new:{new_key}, old:{old_key}")
    assert rotated.open(sealed_with_old, b"ad") == b"v"
    assert rotated.seal(b"v", b"ad").key_id == "new"
    with pytest.raises(VaultError, match="no configured key has the id 'old'"):
        Vault.from_setting(f"new:{new_key}").open(sealed_with_old, b"ad")


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("", "holds no key"),
        ("k1:bm90IGJhc2U2NA", "not base64"),
        ("k1:c2hvcnQ=", "is 5 bytes"),
        ("bad id:" + "A" * 43 + "=", "key_id:base64key"),
    ],
)
def test_vault_refuses_bad_settings(setting: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Vault.from_setting(setting)


def test_vault_refuses_a_repeated_key_id() -> None:
    key = generate_key()
    with pytest.raises(ValueError, match="same key id twice"):
        Vault.from_setting(f"k:{key},k:{key}")


def test_passwords_longer_than_bcrypt_limit_count_in_full() -> None:
    hasher = PasswordHasher(rounds=4)

    async def check() -> None:
        long_password = "x" * 100
        stored = await hasher.hash(long_password)
        assert await hasher.verify(long_password, stored)
        assert not await hasher.verify("x" * 99 + "y", stored)
        assert not await hasher.verify(long_password, None)

    asyncio.run(check())


@pytest.mark.parametrize("name", ["a\x00b", "tab\tinside", "bell\x07"])
def test_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="organization_name: must not contain control"):
        validate_name(name, "organization_name")
