"""Where `marketsync login` keeps its tokens: one per gateway URL, in a file only the user may
read (mode 0600) in the user's config directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs


def tokens_path() -> Path:
    return Path(platformdirs.user_config_dir("marketsync")) / "tokens.json"


def _read() -> dict[str, str]:
    path = tokens_path()
    return json.loads(path.read_text()) if path.exists() else {}


def token_for(url: str) -> str | None:
    return _read().get(url)


def save_token(url: str, token: str) -> None:
    tokens = {**_read(), url: token}
    path = tokens_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600, never readable by others even for a moment; an older file is narrowed too.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(tokens, file)
