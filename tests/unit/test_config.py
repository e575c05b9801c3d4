"""Settings: a missing or unusable value stops the process, naming the variable."""

from __future__ import annotations

import pytest

from marketsync.config import ServiceSettings, load_settings


def test_missing_and_weak_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("INTERNAL_SERVICE_KEY", "short")
    monkeypatch.setenv("GRPC_PORT", "1")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    message = str(stopped.value)
    assert "JWT_SECRET" in message and "INTERNAL_SERVICE_KEY" in message


def test_the_two_keys_must_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "k" * 40)
    monkeypatch.setenv("INTERNAL_SERVICE_KEY", "k" * 40)
    monkeypatch.setenv("GRPC_PORT", "1")
    with pytest.raises(SystemExit, match="must differ"):
        load_settings(ServiceSettings)
