"""`marketsync login` keeps one token per gateway, in a file only its user may read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from marketsync_cli.tokens import save_token, token_for, tokens_path


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path


def test_each_gateway_keeps_its_own_token() -> None:
    save_token("http://a:8080", "token-a")
    save_token("http://b:8080", "token-b")
    save_token("http://a:8080", "token-a2")
    assert token_for("http://a:8080") == "token-a2"
    assert token_for("http://b:8080") == "token-b"
    assert token_for("http://c:8080") is None


def test_the_file_is_narrowed_to_its_user_even_if_it_was_readable(config_home: Path) -> None:
    path = tokens_path()
    assert path.is_relative_to(config_home)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o644)
    save_token("http://a:8080", "token-a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
