"""Settings: a missing or unusable value stops the process, naming the variable; the two ways to
sign user tokens cannot be mixed, and auth signs only what the others accept."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketsync.config import ServiceSettings, TokenIssuerSettings, load_settings
from marketsync.keys import PublicKeys, key_id, private_key_text, public_key_text

AUTH = Ed25519PrivateKey.generate()
SYNC = Ed25519PrivateKey.generate()
KEY_SETTINGS = (
    "JWT_ALGORITHM",
    "JWT_SECRET",
    "JWT_PUBLIC_KEYS",
    "JWT_PRIVATE_KEY",
    "SERVICE_PUBLIC_KEYS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRPC_PORT", "1")


def public(key: Ed25519PrivateKey) -> str:
    return public_key_text(key.public_key())


def eddsa(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    monkeypatch.setenv("JWT_ALGORITHM", "EdDSA")
    monkeypatch.setenv("JWT_PUBLIC_KEYS", public(AUTH))
    monkeypatch.setenv("SERVICE_PUBLIC_KEYS", f"sync:{public(SYNC)}")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_missing_and_weak_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "short")
    monkeypatch.setenv("SERVICE_PUBLIC_KEYS", "sync:not-a-key")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    message = str(stopped.value)
    assert "JWT_SECRET" in message and "SERVICE_PUBLIC_KEYS" in message


def test_hs256_is_the_default_and_needs_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="JWT_SECRET is required"):
        load_settings(ServiceSettings)
    monkeypatch.setenv("JWT_SECRET", "k" * 40)
    assert load_settings(TokenIssuerSettings).user_token_signing_key() == "k" * 40
    assert load_settings(ServiceSettings).user_token_keys() == "k" * 40


def test_eddsa_verifiers_hold_public_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    eddsa(monkeypatch)
    settings = load_settings(ServiceSettings)
    keys = settings.user_token_keys()
    assert isinstance(keys, PublicKeys)
    assert keys.key_ids() == {key_id(AUTH.public_key())}
    assert settings.service_public_keys.find(key_id(SYNC.public_key())) is not None


def test_auth_signs_with_its_private_key_in_eddsa_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # The PEM that openssl writes is taken as it is, too.
    pem = AUTH.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for text in (private_key_text(AUTH), pem):
        eddsa(monkeypatch, JWT_PRIVATE_KEY=text)
        signing_key = load_settings(TokenIssuerSettings).user_token_signing_key()
        assert isinstance(signing_key, Ed25519PrivateKey)
        assert public_key_text(signing_key.public_key()) == public(AUTH)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        pytest.param({"JWT_PUBLIC_KEYS": ""}, "JWT_PUBLIC_KEYS .* is required", id="no public key"),
        pytest.param(
            {"JWT_SECRET": "k" * 40, "JWT_PRIVATE_KEY": private_key_text(AUTH)},
            "JWT_SECRET must be unset",
            id="a secret beside the keys",
        ),
        pytest.param({}, "JWT_PRIVATE_KEY is required", id="auth without its private key"),
        pytest.param(
            {"JWT_PRIVATE_KEY": private_key_text(Ed25519PrivateKey.generate())},
            "not in JWT_PUBLIC_KEYS",
            id="a private key no service would accept",
        ),
        pytest.param(
            {"JWT_PUBLIC_KEYS": public(SYNC), "JWT_PRIVATE_KEY": private_key_text(SYNC)},
            "also a service's",
            id="a service's key signing user tokens",
        ),
        pytest.param(
            {"JWT_PRIVATE_KEY": public(AUTH)}, "JWT_PRIVATE_KEY", id="a public key as private"
        ),
    ],
)
def test_eddsa_mode_refuses_keys_that_would_let_others_sign(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], complaint: str
) -> None:
    eddsa(monkeypatch, **settings)
    with pytest.raises(SystemExit, match=complaint):
        load_settings(TokenIssuerSettings)


@pytest.mark.parametrize("name", ["JWT_PUBLIC_KEYS", "JWT_PRIVATE_KEY"])
def test_hs256_mode_refuses_eddsa_keys(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("JWT_SECRET", "k" * 40)
    monkeypatch.setenv("JWT_PUBLIC_KEYS", public(AUTH))
    if name == "JWT_PRIVATE_KEY":
        monkeypatch.delenv("JWT_PUBLIC_KEYS")
        monkeypatch.setenv(name, private_key_text(AUTH))
    with pytest.raises(SystemExit, match=f"{name} is set but JWT_ALGORITHM is HS256"):
        load_settings(TokenIssuerSettings)
