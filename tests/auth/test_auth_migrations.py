"""Migrations: each file once, in order, recorded; concurrent runs; changed files refused."""

from __future__ import annotations

import asyncio
import subprocess
from importlib.resources import as_file
from pathlib import Path

import psycopg
import pytest
from pgserver._commands import POSTGRES_BIN_PATH

from services.auth.migrations import SCHEMA, MigrationError, migrate

pytestmark = pytest.mark.anyio
SCHEMA_FILES = sorted(entry.name for entry in SCHEMA.iterdir() if entry.name.endswith(".sql"))


def recorded(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT filename FROM schema_migrations ORDER BY filename").fetchall()
    return [row[0] for row in rows]


def test_schema_starts_with_the_multi_tenant_file() -> None:
    assert SCHEMA_FILES[0] == "0001_multi_tenant.sql"


async def test_second_run_applies_nothing(empty_database_url: str) -> None:
    assert await migrate(empty_database_url) == SCHEMA_FILES
    assert await migrate(empty_database_url) == []
    assert recorded(empty_database_url) == SCHEMA_FILES


async def test_concurrent_runs_apply_each_file_once(empty_database_url: str) -> None:
    first, second = await asyncio.gather(migrate(empty_database_url), migrate(empty_database_url))
    assert sorted(first + second) == SCHEMA_FILES
    assert recorded(empty_database_url) == SCHEMA_FILES


async def test_changed_file_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    for name in SCHEMA_FILES:
        (schema / name).write_bytes((SCHEMA / name).read_bytes())
    await migrate(empty_database_url, schema)
    first = schema / SCHEMA_FILES[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=f"{SCHEMA_FILES[0]} was changed after it was applied"):
        await migrate(empty_database_url, schema)


async def test_failing_file_leaves_nothing_behind(empty_database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE kept (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        await migrate(empty_database_url, tmp_path)
    with psycopg.connect(empty_database_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert {"kept", "schema_migrations"} <= tables
    assert "half" not in tables
    assert recorded(empty_database_url) == ["0001_ok.sql"]


def test_files_apply_twice_with_plain_psql(empty_database_url: str) -> None:
    for _ in range(2):
        for name in SCHEMA_FILES:
            with as_file(SCHEMA / name) as sql_file:
                subprocess.run(
                    [
                        str(POSTGRES_BIN_PATH / "psql"),
                        "--no-psqlrc",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-q",
                        "-d",
                        empty_database_url,
                        "-f",
                        str(sql_file),
                    ],
                    check=True,
                    capture_output=True,
                )
