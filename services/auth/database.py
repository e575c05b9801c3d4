"""The connection pool to the credentials database.

Works against a direct PostgreSQL endpoint and against a transaction-mode pooler (Neon's pooled
endpoint is PgBouncer): connections are in autocommit and the domain opens explicit, short
transactions, so no state outlives a transaction. TLS follows the URL's `sslmode` (libpq).

A connection leaving the pool is checked without a round trip (see `check_idle_connection`), so
after PostgreSQL restarts the next request gets a fresh connection instead of a broken one,
while a healthy pool costs no statement beyond the request's own.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


async def check_idle_connection(conn: AsyncConnection[Any]) -> None:
    """Raise if the connection is broken; a round trip only when the server has spoken.

    Between transactions the server sends an autocommit connection nothing unasked, except to
    end it: a restart, pg_terminate_backend or an idle timeout sends a FATAL error, then closes
    the socket. So a socket with nothing to read is taken as working; one with something to
    read gets the pool's usual empty query, which reads it and fails if the connection is
    gone (the pool then drops it and hands out another), or passes after a stray notice. A
    server that vanished without closing the socket goes unseen here, as it would by the
    empty query, which would wait on it just as long as the request's own query does.
    """
    poller = select.poll()  # not select.select: descriptors may exceed FD_SETSIZE
    poller.register(conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


async def open_pool(
    conninfo: str,
    *,
    prepare_threshold: int | None,
    min_size: int = 1,
    max_size: int = 10,
    wait_seconds: float = 30.0,
) -> AsyncConnectionPool:
    """Open a pool and wait until its first connection works.

    `prepare_threshold` is psycopg's: after that many executions a query becomes a server-side
    prepared statement; None never prepares, which a pooler without prepared-statement support
    (PgBouncer before 1.21, or max_prepared_statements = 0) requires.
    """
    pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=wait_seconds,
        kwargs={"autocommit": True, "prepare_threshold": prepare_threshold},
        check=check_idle_connection,
        open=False,
    )
    await pool.open(wait=True, timeout=wait_seconds)
    return pool
