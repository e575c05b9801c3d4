"""The pool outlives a PostgreSQL restart."""

from __future__ import annotations

import pytest
from pgserver import PostgresServer
from pgserver._commands import pg_ctl

from services.auth.accounts import Accounts

from .conftest import Signup

pytestmark = pytest.mark.anyio


async def test_next_call_after_a_restart_succeeds(
    postgres: PostgresServer, signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)
    postgres.ensure_postgres_running()
    assert await accounts.check_session(ann.identity) == ann.identity
