"""Every service starts with what its pod is given (keys filled in as the README makes them), and
each caller's credentials are accepted by the services it calls, under its own name only."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings

from marketsync.config import ServiceSettings, load_settings
from marketsync.errors import Unauthenticated
from marketsync.keys import private_key_text, public_key_text
from marketsync.service_auth import ServiceCredential, verify_service_token
from services.auth.server import INTERNAL_CALLERS as AUTH_CALLERS
from services.auth.server import AuthSettings
from services.catalog.server import INTERNAL_CALLERS as CATALOG_CALLERS
from services.catalog.server import CatalogSettings
from services.sync.scheduler import SchedulerSettings
from services.sync.server import SyncSettings
from tests.deploy.conftest import render
from tests.deploy.test_manifests import env_of, pod_templates

SETTINGS: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "sync": SyncSettings,
    "sync-scheduler": SchedulerSettings,
}
# The name each calling workload signs its credentials as (services/*/server.py, scheduler.py).
SIGNS_AS = {"catalog": "catalog", "sync": "sync", "sync-scheduler": "scheduler"}
KEYS = {name: Ed25519PrivateKey.generate() for name in ("user-tokens", *SIGNS_AS.values())}
SECRET_VALUES = {
    ("marketsync-auth", "JWT_PRIVATE_KEY"): private_key_text(KEYS["user-tokens"]),
    ("marketsync-auth", "CREDENTIALS_ENCRYPTION_KEY"): "k1:"
    + base64.b64encode(secrets.token_bytes(32)).decode(),
    ("marketsync-auth", "CRED_DATABASE_URL"): "postgresql://marketsync@db/marketsync",
    **{
        (f"marketsync-{name}", "SERVICE_PRIVATE_KEY"): private_key_text(KEYS[name])
        for name in SIGNS_AS.values()
    },
}
PUBLIC_KEY_VALUES = {
    "JWT_PUBLIC_KEYS": public_key_text(KEYS["user-tokens"].public_key()),
    "SERVICE_PUBLIC_KEYS": ",".join(
        f"{name}:{public_key_text(KEYS[name].public_key())}" for name in SIGNS_AS.values()
    ),
}


def resolved(variable: dict[str, Any]) -> str:
    source = variable.get("valueFrom", {})
    if "secretKeyRef" in source:
        reference = source["secretKeyRef"]
        return SECRET_VALUES[(reference["name"], reference["key"])]
    if "configMapKeyRef" in source:
        return PUBLIC_KEY_VALUES[source["configMapKeyRef"]["key"]]
    return str(variable["value"])


@pytest.fixture(scope="module")
def workload_settings() -> Iterator[dict[str, BaseSettings]]:
    """Each workload's settings, loaded from exactly the environment its pod spec gives it."""
    loaded = {}
    saved = dict(os.environ)
    try:
        for name, template in pod_templates(render(())):
            if name not in SETTINGS:
                continue
            (container,) = template["spec"]["containers"]
            os.environ.clear()
            os.environ.update({key: resolved(spec) for key, spec in env_of(container).items()})
            # load_settings exits naming the variable if the pod lacks what the service needs.
            loaded[name] = load_settings(SETTINGS[name])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert set(loaded) == set(SETTINGS)
    yield loaded


def test_every_workload_starts_with_the_settings_its_pod_gets(
    workload_settings: dict[str, BaseSettings],
) -> None:
    for name in ("auth", "catalog", "sync"):
        settings = workload_settings[name]
        assert isinstance(settings, ServiceSettings)
        assert settings.jwt_algorithm == "EdDSA" and settings.jwt_secret is None, name


def test_each_caller_is_accepted_under_its_own_name_only(
    workload_settings: dict[str, BaseSettings],
) -> None:
    servers = {"auth": AUTH_CALLERS, "catalog": CATALOG_CALLERS}
    for caller, signs_as in SIGNS_AS.items():
        caller_settings = workload_settings[caller]
        assert isinstance(caller_settings, CatalogSettings | SyncSettings | SchedulerSettings)
        key = caller_settings.service_private_key
        for server, internal_callers in servers.items():
            server_settings = workload_settings[server]
            assert isinstance(server_settings, ServiceSettings)
            callers = server_settings.service_public_keys
            if any(signs_as in allowed for allowed in internal_callers.values()):
                token = ServiceCredential(key, signs_as).token()
                assert verify_service_token(callers, token) == signs_as, (caller, server)
            for other in set(SIGNS_AS.values()) - {signs_as}:
                with pytest.raises(Unauthenticated):
                    verify_service_token(callers, ServiceCredential(key, other).token())
