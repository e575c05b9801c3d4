"""The pool outlives a PostgreSQL restart, and hands out a healthy connection without a round
trip to test it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time
from pgserver.postgres_server import PostgresServer
from psycopg_pool import AsyncConnectionPool

from services.auth.accounts import Accounts
from services.auth.database import open_pool

from .conftest import Signup

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool of a single connection, so each checkout hands out the same one while it works."""
    pool = await open_pool(database_url, prepare_threshold=None, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def test_next_call_after_a_restart_succeeds(
    postgres: PostgresServer, signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)
    postgres.ensure_postgres_running()
    assert await accounts.check_session(ann.identity) == ann.identity


async def test_a_working_connection_is_handed_out_without_a_round_trip(
    one_connection: AsyncConnectionPool, tmp_path: Path
) -> None:
    trace = tmp_path / "libpq-trace"
    with trace.open("w") as sink:
        async with one_connection.connection() as conn:
            backend = conn.info.backend_pid
            conn.pgconn.trace(sink.fileno())
        async with one_connection.connection() as conn:
            conn.pgconn.untrace()
            assert conn.info.backend_pid == backend
    assert trace.read_text() == ""


async def test_a_connection_the_server_ended_is_replaced_at_checkout(
    one_connection: AsyncConnectionPool, database_url: str
) -> None:
    async with one_connection.connection() as conn:
        ended = conn.info.backend_pid
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s, 5000)", (ended,))
    async with one_connection.connection() as conn:
        assert conn.info.backend_pid != ended
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
