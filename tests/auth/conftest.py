"""A real PostgreSQL (pgserver) for the auth tests, started once per test session.

As root pgserver runs postgres as the system user `pgserver`; it listens on a Unix socket in
its data directory only, so nothing binds a TCP port. One database is migrated once and shared:
tests make their own users and organizations (unique emails), so they stay independent.
Tests needing an empty database take `empty_database_url`.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.identity import Identity, verify_user_token
from services.auth.accounts import Accounts
from services.auth.credentials import Credentials
from services.auth.database import open_pool
from services.auth.invitations import Invitations
from services.auth.migrations import migrate
from services.auth.models import Registration
from services.auth.organizations import Organizations
from services.auth.passwords import PasswordHasher
from services.auth.sync_logs import SyncLogs
from services.auth.vault import Vault, generate_key

with warnings.catch_warnings():
    # platformdirs warns at import that XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
    warnings.simplefilter("ignore")
    # pgserver has no wheel for every supported Python (pyproject.toml): skipped where missing.
    pytest.importorskip("pgserver", reason="pgserver (embedded PostgreSQL) is not installed")
    from pgserver.postgres_server import PostgresServer, get_server

TOKEN_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="auth-tests-pg-"))
    server = get_server(data_dir, cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def create_database(server: PostgresServer) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    uri: str = server.get_uri(name)
    return uri


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> str:
    url = create_database(postgres)
    asyncio.run(migrate(url))
    return url


@pytest.fixture
def empty_database_url(postgres: PostgresServer) -> str:
    return create_database(postgres)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(database_url, prepare_threshold=None, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def passwords() -> PasswordHasher:
    # Per test: its concurrency limit is an asyncio semaphore, bound to one test's event loop.
    return PasswordHasher(rounds=4)  # the cheapest cost: tests check logic, not hash strength


@pytest.fixture
def accounts(pool: AsyncConnectionPool, passwords: PasswordHasher) -> Accounts:
    return Accounts(pool, token_secret=TOKEN_SECRET, passwords=passwords)


@pytest.fixture
def organizations(pool: AsyncConnectionPool) -> Organizations:
    return Organizations(pool)


@pytest.fixture
def invitations(pool: AsyncConnectionPool) -> Invitations:
    return Invitations(pool)


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return generate_key()


@pytest.fixture
def credentials(pool: AsyncConnectionPool, encryption_key: str) -> Credentials:
    return Credentials(pool, Vault.from_setting(f"k1:{encryption_key}"))


@pytest.fixture
def sync_logs(pool: AsyncConnectionPool) -> SyncLogs:
    return SyncLogs(pool)


@dataclass(frozen=True)
class SignedUp:
    email: str
    password: str
    registration: Registration
    identity: Identity


Signup = Callable[..., Awaitable[SignedUp]]


@pytest.fixture
def signup(accounts: Accounts) -> Signup:
    """Register a new user with a unique email; the user owns a new organization."""

    async def register(label: str = "user", password: str = PASSWORD) -> SignedUp:
        email = f"{label}-{uuid.uuid4().hex[:10]}@example.com"
        registration = await accounts.register(
            email=email, password=password, name=label.title(), organization_name=f"{label} Inc"
        )
        identity = verify_user_token(TOKEN_SECRET, registration.token)
        return SignedUp(email, password, registration, identity)

    return register


Join = Callable[[Identity, SignedUp, str], Awaitable[Identity]]


@pytest.fixture
def join(invitations: Invitations) -> Join:
    """Invite the user into the inviter's organization in the role and accept as the user;
    answers the user's identity there (session 0: for domain calls, not session checks)."""

    async def invite_and_accept(inviter: Identity, user: SignedUp, role: str) -> Identity:
        invitation = await invitations.invite(inviter, email=user.email, role=role)
        member = await invitations.accept(user.identity, invitation.id)
        assert (member.user_id, member.role) == (user.identity.user_id, role)
        return Identity(user.identity.user_id, inviter.organization_id, role, 0)

    return invite_and_accept
