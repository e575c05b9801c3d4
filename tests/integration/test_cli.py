"""The `marketsync` command against the local stack, run as a user runs it: log in, save
credentials, sync with --watch, export and import products, and the server's errors."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dev.stack import Stack
from tests.integration.conftest import Api
from tests.integration.sync_support import account

MARKETSYNC = Path(sys.executable).parent / "marketsync"
SYNCED = 120


class Cli:
    """`marketsync` for one user: a config directory of its own, the stack's gateway."""

    def __init__(self, gateway_url: str, home: Path) -> None:
        self.env = {
            **os.environ,
            "MARKETSYNC_URL": gateway_url,
            "XDG_CONFIG_HOME": str(home),
            "COLUMNS": "200",
        }

    def run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MARKETSYNC), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=300,
            check=False,
            # No controlling terminal: hidden prompts read the input given, never /dev/tty.
            start_new_session=True,
        )

    def ok(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
        result = self.run(*args, stdin=stdin, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture
def user(api: Api) -> dict[str, Any]:
    return api.register()


@pytest.fixture
def cli(stack: Stack, tmp_path: Path, user: dict[str, Any]) -> Cli:
    cli = Cli(stack.gateway_url, tmp_path / "config")
    cli.ok("login", "--email", user["user"]["email"], stdin=f"{user['password']}\n")
    return cli


def test_login_keeps_the_token_for_the_user_only(cli: Cli, user: dict[str, Any]) -> None:
    tokens = Path(cli.env["XDG_CONFIG_HOME"]) / "marketsync" / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert user["password"] not in tokens.read_text()
    assert user["organization"]["name"] in cli.ok("orgs")
    assert user["user"]["email"] in cli.ok("members")


def test_a_wrong_password_prints_the_servers_message_and_exits_1(
    stack: Stack, tmp_path: Path, user: dict[str, Any]
) -> None:
    cli = Cli(stack.gateway_url, tmp_path)
    result = cli.run(
        "login", "--email", user["user"]["email"], env={"MARKETSYNC_PASSWORD": "not the one"}
    )
    assert result.returncode == 1
    assert "the email or password is wrong" in result.stderr
    assert not (tmp_path / "marketsync" / "tokens.json").exists()


def test_commands_before_login_say_how_to_log_in(stack: Stack, tmp_path: Path) -> None:
    result = Cli(stack.gateway_url, tmp_path).run("products", "list")
    assert result.returncode == 1
    assert "marketsync login" in result.stderr


def test_credentials_from_a_hidden_prompt_are_saved_masked(cli: Cli) -> None:
    answers = "Atzr|cli-refresh-token-0001\namzn1.app\nlwa-secret-0002\nA1SELLER\n\n"
    output = cli.ok("credentials", "set", "amazon", stdin=answers)
    assert "refresh_token=*" in output and "0001" in output
    assert "Atzr|cli" not in output and "lwa-secret" not in output
    assert "ATVPDKIKX0DER"[-4:] in cli.ok("credentials", "list")


def test_a_watched_sync_runs_to_completion_then_exports_every_product(
    cli: Cli, tmp_path: Path
) -> None:
    secrets = {
        "MARKETSYNC_WALMART_CLIENT_ID": account("cli-client", SYNCED),
        "MARKETSYNC_WALMART_CLIENT_SECRET": "cli-walmart-secret",
    }
    saved = cli.ok("credentials", "set", "walmart", env=secrets)
    assert "cli-walmart-secret" not in saved

    watched = cli.ok("sync", "start", "walmart", "--watch", "--interval", "0.2")
    # Walmart says how many items there are: the bar fills towards it and the summary says it.
    counts = f"{SYNCED} of {SYNCED} fetched, {SYNCED} written, 0 unchanged, 0 failed"
    assert f"succeeded: {counts} in " in watched
    bar = next(line for line in watched.splitlines() if line.lstrip().startswith("succeeded"))
    assert counts in bar and "ETA" in bar, watched
    listed = cli.ok("sync", "list")
    assert "succeeded" in listed and f"{SYNCED} of {SYNCED}" in listed, listed

    exported = [json.loads(line) for line in cli.ok("products", "export").splitlines()]
    assert len(exported) == SYNCED
    assert {product["marketplace"] for product in exported} == {"walmart"}
    csv_file = tmp_path / "products.csv"
    cli.ok("products", "export", "--format", "csv", "--output", str(csv_file))
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert sorted(row["sku"] for row in rows) == sorted(p["sku"] for p in exported)
    first = exported[0]
    assert json.loads(cli.ok("products", "get", first["sku"]))["title"] == first["title"]


def test_import_upserts_in_batches_and_names_what_failed(cli: Cli, tmp_path: Path) -> None:
    products = [
        {"sku": f"CLI-{n}", "title": f"Imported {n}", "price": "9.99", "currency": "USD"}
        for n in range(5)
    ]
    products.append({"sku": "CLI-BAD", "title": "Bad price", "price": "nine", "currency": "USD"})
    jsonl = tmp_path / "products.jsonl"
    jsonl.write_text("".join(json.dumps(product) + "\n" for product in products))

    result = cli.run("products", "import", str(jsonl), "--batch-size", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "5 upserted (0 unchanged), 1 failed" in result.stdout
    assert "CLI-BAD" in result.stdout

    csv_file = tmp_path / "again.csv"
    cli.ok("products", "export", "--format", "csv", "--output", str(csv_file))
    again = cli.ok("products", "import", str(csv_file))
    assert "5 upserted (5 unchanged), 0 failed" in again
    assert json.loads(cli.ok("products", "get", "CLI-3"))["title"] == "Imported 3"


def test_server_text_is_printed_as_it_is(cli: Cli, tmp_path: Path) -> None:
    product = {"sku": "CLI-[x]", "title": "[/bold] [red]Odd", "price": "1.00", "currency": "USD"}
    jsonl = tmp_path / "odd.jsonl"
    jsonl.write_text(json.dumps(product) + "\n")
    cli.ok("products", "import", str(jsonl))
    assert "[/bold] [red]Odd" in cli.ok("products", "list")
    missing = cli.run("products", "get", "[/nope]")
    assert missing.returncode == 1
    assert "[/nope]" in missing.stderr
