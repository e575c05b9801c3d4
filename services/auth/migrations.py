"""Apply the schema files shipped with auth (services/auth/schema/*.sql, also `schema/` at the
repository root) to the credentials database, in file-name order, each file exactly once.

Each file runs in its own transaction together with its row in `schema_migrations` (file name and
SHA-256 of its content), so a file is either fully applied and recorded or not at all. Every
transaction first takes a transaction-scoped advisory lock: replicas starting together apply each
file once, one after the other, and the lock is released with the transaction, which also holds
behind a transaction-mode pooler such as PgBouncer. A recorded file whose content has changed is
refused: schema changes go into a new file.

Run `python -m services.auth.migrations` to migrate the database named by CRED_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import psycopg

# Package data, read through importlib.resources: found wherever the package is installed.
SCHEMA: Traversable = files("services.auth") / "schema"
# Any fixed 64-bit number works; every replica must use the same one.
MIGRATION_LOCK_KEY = 7_245_113_590_021
_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename   text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

logger = logging.getLogger(__name__)


class MigrationError(Exception):
    """The database's recorded schema disagrees with the files shipped."""


@dataclass(frozen=True, slots=True)
class Migration:
    filename: str
    sql: str
    checksum: str


def load_migrations(schema: Traversable = SCHEMA) -> list[Migration]:
    migrations = []
    for entry in sorted(schema.iterdir(), key=lambda entry: entry.name):
        if entry.name.endswith(".sql"):
            content = entry.read_bytes()
            migrations.append(
                Migration(entry.name, content.decode("utf-8"), hashlib.sha256(content).hexdigest())
            )
    return migrations


async def migrate(conninfo: str, schema: Traversable = SCHEMA) -> list[str]:
    """Apply the files not yet recorded; return the names of those applied by this call."""
    applied = []
    # A dedicated connection: prepare_threshold=None keeps it usable through a pooler.
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, prepare_threshold=None
    ) as conn:
        for migration in load_migrations(schema):
            if await _apply(conn, migration):
                logger.info("applied migration %s", migration.filename)
                applied.append(migration.filename)
    return applied


async def _apply(conn: psycopg.AsyncConnection, migration: Migration) -> bool:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        await conn.execute(_CREATE_LEDGER)
        cursor = await conn.execute(
            "SELECT checksum FROM schema_migrations WHERE filename = %s", (migration.filename,)
        )
        recorded = await cursor.fetchone()
        if recorded is not None:
            if recorded[0] != migration.checksum:
                raise MigrationError(
                    f"{migration.filename} was changed after it was applied (recorded checksum "
                    f"{recorded[0]}, file has {migration.checksum}); put schema changes in a "
                    "new file instead"
                )
            return False
        # Without parameters psycopg sends the text as one simple query: several statements run.
        await conn.execute(migration.sql.encode("utf-8"))
        await conn.execute(
            "INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s)",
            (migration.filename, migration.checksum),
        )
        return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    conninfo = os.environ.get("CRED_DATABASE_URL")
    if not conninfo:
        sys.exit("CRED_DATABASE_URL is not set: set it to the credentials database's URL")
    try:
        applied = asyncio.run(migrate(conninfo))
    except MigrationError as exc:
        sys.exit(f"migration refused: {exc}")
    print(f"{len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else ""))


if __name__ == "__main__":
    main()
