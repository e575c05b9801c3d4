"""The connection pool to the credentials database.

Works against a direct PostgreSQL endpoint and against a transaction-mode pooler (Neon's pooled
endpoint is PgBouncer): connections are in autocommit and the domain opens explicit, short
transactions, so no state outlives a transaction. TLS follows the URL's `sslmode` (libpq).
Each connection is checked when it leaves the pool, so after PostgreSQL restarts the next
request gets a fresh connection instead of a broken one.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


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
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=True, timeout=wait_seconds)
    return pool
