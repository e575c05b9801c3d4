"""The local stack's keys: each process gets only its own private key, in EdDSA mode only auth
can sign user tokens, and every process starts with what it was given."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings

from dev.stack import CALLERS, Stack, new_stack
from marketsync.config import load_settings
from marketsync.errors import Unauthenticated
from marketsync.identity import issue_user_token, verify_user_token
from marketsync.keys import (
    PublicKeys,
    key_id,
    named_public_keys_from_text,
    private_key_from_text,
    public_keys_from_text,
)
from services.auth.server import AuthSettings
from services.catalog.server import CatalogSettings
from services.sync.scheduler import SchedulerSettings
from services.sync.server import SyncSettings

# What the stack sets only once the backends and services run.
STARTED = {
    "CRED_DATABASE_URL": "postgresql://localhost/marketsync",
    "AUTH_ADDRESS": "127.0.0.1:1",
    "CATALOG_ADDRESS": "127.0.0.1:2",
    "GRPC_PORT": "0",
}
SETTINGS: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "sync": SyncSettings,
    "scheduler": SchedulerSettings,
}
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


@pytest.fixture(autouse=True)
def no_keys_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("JWT_", "SERVICE_")):
            monkeypatch.delenv(name)


@pytest.fixture(params=["HS256", "EdDSA"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Stack:
    return new_stack(tmp_path, {"JWT_ALGORITHM": request.param})


def settings_from(
    monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], settings_class: type[SettingsT]
) -> SettingsT:
    with monkeypatch.context() as patched:
        for name in list(os.environ):
            patched.delenv(name)
        for name, value in {**env, **STARTED}.items():
            patched.setenv(name, value)
        return load_settings(settings_class)


def test_each_caller_gets_its_own_service_key_and_no_other(stack: Stack) -> None:
    assert "SERVICE_PRIVATE_KEY" not in stack.env
    assert "SERVICE_PRIVATE_KEY" not in stack.env_of("auth"), "auth calls no one"
    public_keys = named_public_keys_from_text(stack.env["SERVICE_PUBLIC_KEYS"])
    seen = set()
    for name in CALLERS:
        key = private_key_from_text(stack.env_of(name)["SERVICE_PRIVATE_KEY"])
        found = public_keys.find(key_id(key.public_key()))
        assert found is not None and found[0] == name, name
        seen.add(key_id(key.public_key()))
    assert len(seen) == len(CALLERS)


# Every value of a process's environment is tried as an HMAC key, short ones too.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_in_eddsa_mode_only_auth_can_sign_user_tokens(tmp_path: Path) -> None:
    stack = new_stack(tmp_path, {"JWT_ALGORITHM": "EdDSA"})
    auth_public_keys = public_keys_from_text(stack.env["JWT_PUBLIC_KEYS"], "auth")
    auth_key = private_key_from_text(stack.env_of("auth")["JWT_PRIVATE_KEY"])
    assert auth_public_keys.find(key_id(auth_key.public_key())) is not None
    assert "JWT_SECRET" not in stack.env and "JWT_PRIVATE_KEY" not in stack.env
    for name in CALLERS:
        env = stack.env_of(name)
        forging = [
            variable
            for variable, value in env.items()
            if any(_accepted(auth_public_keys, token) for token in _signed_with(value, auth_key))
        ]
        assert not forging, f"{name}'s {forging} can sign user tokens"


def _accepted(keys: PublicKeys, token: str) -> bool:
    try:
        verify_user_token(keys, token)
    except Unauthenticated:
        return False
    return True


def _signed_with(value: str, auth_key: Ed25519PrivateKey) -> list[str]:
    """User tokens signed with a setting's value: as an HMAC key, and if it is an Ed25519 key,
    naming its own key id and auth's."""
    if not value:
        return []
    now = datetime.now(UTC)
    token, _ = issue_user_token(
        value, user_id=1, organization_id=1, role="owner", session_id=1, now=now
    )
    tokens = [token]
    try:
        key = private_key_from_text(value)
    except ValueError:
        return tokens
    claims = jwt.decode(tokens[0], options={"verify_signature": False})
    for named in (key, auth_key):
        headers = {"kid": key_id(named.public_key())}
        tokens.append(jwt.encode(claims, key, algorithm="EdDSA", headers=headers))
    return tokens


def test_every_process_starts_with_the_keys_it_is_given(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, settings_class in SETTINGS.items():
        # load_settings exits, naming the variable, if a process could not start with its keys.
        settings_from(monkeypatch, stack.env_of(name), settings_class)


def test_dev_keys_are_owner_only_files_kept_across_restarts(tmp_path: Path) -> None:
    first = new_stack(tmp_path, {"JWT_ALGORITHM": "EdDSA"})
    for name in [f"{caller}_service_key" for caller in CALLERS] + ["jwt_private_key"]:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    again = new_stack(tmp_path, {"JWT_ALGORITHM": "EdDSA"})
    assert again.private_env == first.private_env
    assert again.env["SERVICE_PUBLIC_KEYS"] == first.env["SERVICE_PUBLIC_KEYS"]


def test_a_private_key_in_the_environment_is_handed_to_no_one_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stray = "a private key in the developer's shell"
    monkeypatch.setenv("SERVICE_PRIVATE_KEY", stray)
    monkeypatch.setenv("JWT_PRIVATE_KEY", stray)
    stack = new_stack(tmp_path)
    assert stray not in stack.env.values()
    for name in ("auth", *CALLERS):
        assert stray not in stack.env_of(name).values(), name
