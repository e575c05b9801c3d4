"""Password checks per email and client address: failed logins lock out the client that made
them, a much higher cap bounds an email's failures from everyone, and few checks run at once.

Only failures count, and a right password starts its client's count over. Correct logins never
lock anyone out, however many run at once.

- Per email and client: `LOGIN_FAILURE_LIMIT` wrong passwords within `LOGIN_WINDOW` from one
  client address lock that address out of the email until the window passes. The address is
  `throttle.client_address`'s key (Envoy's view of the client, else the gRPC peer; an IPv6
  client's /64), so it is not the caller's to choose. Keying by email alone would let anyone who
  knows an email keep it locked with five wrong passwords every 15 minutes; this way the owner,
  logging in from anywhere else, is unaffected.
- Per email, from every address together: `EMAIL_FAILURE_LIMIT` failures within the window lock
  the email for everyone until the window passes, which bounds guessing spread over many
  addresses. A right password does not forgive them: they were not the owner's. That an attacker
  holding enough addresses can trip this cap and so lock the owner out too is the accepted trade:
  it takes `EMAIL_FAILURE_LIMIT / LOGIN_FAILURE_LIMIT` addresses (IPv6 /64s) per window rather
  than one, and the alternative is unbounded guessing.

Emails are counted whether or not an account has them, and the lockout answers are the same
either way, so they reveal nothing about which accounts exist.

A check may start only while (PostgreSQL decides, so this holds across replicas) the email has
fewer than `CHECKS_AT_ONCE` checks under way, the client's failures plus its checks under way
stay under `LOGIN_FAILURE_LIMIT`, and the email's failures plus all its checks under way stay
under `EMAIL_FAILURE_LIMIT`. Every admitted check may become a failure, so a parallel burst of
wrong passwords gets no more checked than the limits allow. A login that finds no free slot
waits for one (first on this replica's own per-email semaphore, without touching the database,
then polling the database for slots held by other replicas) and gives up with
RESOURCE_EXHAUSTED after `wait_seconds`. A replica that dies mid-check leaves a row that stops
counting after `lease`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import ResourceExhausted
from marketsync.identity import utcnow
from services.auth.metrics import LOCKOUTS

LOGIN_FAILURE_LIMIT = 5
EMAIL_FAILURE_LIMIT = 100
LOGIN_WINDOW = timedelta(minutes=15)
CHECKS_AT_ONCE = 5
# Far longer than a bcrypt check takes, even queued behind others for the CPU.
CHECK_LEASE = timedelta(minutes=1)
SLOT_WAIT_SECONDS = 10.0
# In-process callers that name no client (the servicer always names one, the gRPC peer at
# least) share this key.
NO_CLIENT = ""
BUSY = "too many logins for this email are under way at once; try again in a few seconds"
_FIRST_POLL_SECONDS = 0.02
_MAX_POLL_SECONDS = 0.25

T = TypeVar("T")


@dataclass
class _LocalGate:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)


@dataclass(frozen=True, slots=True)
class _Gate:
    """The counts a check was admitted or refused on, read in one snapshot; the window ends
    are None without failures in the window."""

    client_failures: int
    client_window_ends: datetime | None
    email_failures: int
    email_window_ends: datetime | None
    check_id: int | None


class LoginChecks:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        limit: int = LOGIN_FAILURE_LIMIT,
        email_limit: int = EMAIL_FAILURE_LIMIT,
        checks_at_once: int = CHECKS_AT_ONCE,
        window: timedelta = LOGIN_WINDOW,
        lease: timedelta = CHECK_LEASE,
        wait_seconds: float = SLOT_WAIT_SECONDS,
    ) -> None:
        # A cap under the per-client limit would make every client's lockout the email's.
        if not 1 <= limit <= email_limit or checks_at_once < 1:
            raise ValueError("login limits need 1 <= limit <= email_limit and checks_at_once >= 1")
        self._pool = pool
        self._limit = limit
        self._email_limit = email_limit
        self._checks_at_once = checks_at_once
        self._window = window
        self._lease = lease
        self._wait_seconds = wait_seconds
        # Kept only while a login of the email holds or awaits a slot on this replica.
        self._local: dict[str, _LocalGate] = {}

    @property
    def window(self) -> timedelta:
        return self._window

    @property
    def lease(self) -> timedelta:
        return self._lease

    async def run(
        self, email: str, check: Callable[[], Awaitable[T | None]], *, client: str | None = None
    ) -> T | None:
        """Run one password check of the email for the client within their limits and record
        the verdict: `check` answers None for a wrong password. ResourceExhausted when the
        client or the email is locked out, or no slot frees up in time."""
        email = email.lower()
        client = NO_CLIENT if client is None else client
        deadline = asyncio.get_running_loop().time() + self._wait_seconds
        async with self._local_slot(email, deadline):
            check_id = await self._admit(email, client, deadline)
            try:
                result = await check()
            except BaseException:
                # No verdict (the call failed or was cancelled): free the slot uncounted. If
                # even that fails, the row stops counting when its lease runs out.
                with contextlib.suppress(psycopg.Error):
                    await self._end(email, client, check_id, None)
                raise
            await self._end(email, client, check_id, result is not None)
            return result

    async def purge(self) -> int:
        """Delete the per-client counters whose window has passed; answer how many.
        (`store.purge_ended` deletes the email counters and checks left by dead replicas.)"""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM login_client_failures WHERE window_started_at <= now() - %s",
                (self._window,),
            )
        return cursor.rowcount

    @asynccontextmanager
    async def _local_slot(self, email: str, deadline: float) -> AsyncIterator[None]:
        gate = self._local.get(email)
        if gate is None:
            gate = self._local[email] = _LocalGate(asyncio.Semaphore(self._checks_at_once))
        gate.users += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await gate.semaphore.acquire()
            except TimeoutError:
                raise ResourceExhausted(BUSY) from None
            try:
                yield
            finally:
                gate.semaphore.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._local[email]

    async def _admit(self, email: str, client: str, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        pause = _FIRST_POLL_SECONDS
        while True:
            async with self._pool.connection() as conn:
                gate = await self._start_check(conn, email, client)
            if gate.check_id is not None:
                return gate.check_id
            locked = _lockout(gate, self._limit, self._email_limit)
            if locked is not None:
                LOCKOUTS.inc()
                raise ResourceExhausted(locked)
            if loop.time() + pause > deadline:
                raise ResourceExhausted(BUSY)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_SECONDS)

    async def _start_check(self, conn: AsyncConnection, email: str, client: str) -> _Gate:
        """Admit a check when every limit leaves room; answer the counts either way.

        The email's advisory lock (the key replicas before 0007 take too) makes admissions of
        one email take turns, and failures and checks are read in one statement, so a check
        ending at the same moment (its row deleted and its failure counted in one statement) is
        seen either before or after, never half. Checks older than the lease belong to a
        replica that died and no longer count.
        """
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"login:{email}",)
            )
            cursor = conn.cursor(row_factory=class_row(_Gate))
            await cursor.execute(
                "WITH by_email AS ("
                "   SELECT coalesce(max(failures), 0) AS failures,"
                "   max(window_started_at) + %(window)s AS window_ends FROM login_failures"
                "   WHERE email = %(email)s AND window_started_at > now() - %(window)s),"
                " by_client AS ("
                "   SELECT coalesce(max(failures), 0) AS failures,"
                "   max(window_started_at) + %(window)s AS window_ends FROM login_client_failures"
                "   WHERE email = %(email)s AND client = %(client)s"
                "   AND window_started_at > now() - %(window)s),"
                " checking AS ("
                "   SELECT count(*) AS checks,"
                "   count(*) FILTER (WHERE client = %(client)s) AS client_checks"
                "   FROM login_checks WHERE email = %(email)s AND started_at > now() - %(lease)s),"
                " admitted AS ("
                "   INSERT INTO login_checks (email, client) SELECT %(email)s, %(client)s"
                "   FROM by_email, by_client, checking"
                "   WHERE checking.checks < %(at_once)s"
                "   AND by_client.failures + checking.client_checks < %(limit)s"
                "   AND by_email.failures + checking.checks < %(email_limit)s RETURNING id)"
                " SELECT by_client.failures AS client_failures,"
                " by_client.window_ends AS client_window_ends,"
                " by_email.failures AS email_failures, by_email.window_ends AS email_window_ends,"
                " (SELECT id FROM admitted) AS check_id FROM by_email, by_client",
                {
                    "email": email,
                    "client": client,
                    "window": self._window,
                    "lease": self._lease,
                    "at_once": self._checks_at_once,
                    "limit": self._limit,
                    "email_limit": self._email_limit,
                },
            )
            gate = await cursor.fetchone()
        assert gate is not None
        return gate

    async def _end(self, email: str, client: str, check_id: int, passed: bool | None) -> None:
        params = {"check_id": check_id, "email": email, "client": client, "window": self._window}
        async with self._pool.connection() as conn:
            if passed is None:
                await conn.execute("DELETE FROM login_checks WHERE id = %(check_id)s", params)
            elif passed:
                # Only this client's count starts over: a right password says nothing about
                # the failures other addresses sent.
                await conn.execute(
                    "WITH ended AS (DELETE FROM login_checks WHERE id = %(check_id)s)"
                    " DELETE FROM login_client_failures"
                    " WHERE email = %(email)s AND client = %(client)s",
                    params,
                )
            else:
                # One statement ends the check and counts the failure for the client and the
                # email, so an admission never sees the check gone but its failure uncounted.
                # A window older than `window` starts over at 1.
                await conn.execute(
                    "WITH ended AS (DELETE FROM login_checks WHERE id = %(check_id)s),"
                    " by_email AS ("
                    "   INSERT INTO login_failures AS f (email, failures, window_started_at)"
                    "   VALUES (%(email)s, 1, now())"
                    "   ON CONFLICT (email) DO UPDATE SET"
                    "   failures = CASE WHEN f.window_started_at <= now() - %(window)s THEN 1"
                    "                   ELSE f.failures + 1 END,"
                    "   window_started_at = CASE WHEN f.window_started_at <= now() - %(window)s"
                    "                            THEN now() ELSE f.window_started_at END)"
                    " INSERT INTO login_client_failures AS f"
                    " (email, client, failures, window_started_at)"
                    " VALUES (%(email)s, %(client)s, 1, now())"
                    " ON CONFLICT (email, client) DO UPDATE SET"
                    " failures = CASE WHEN f.window_started_at <= now() - %(window)s THEN 1"
                    "                 ELSE f.failures + 1 END,"
                    " window_started_at = CASE WHEN f.window_started_at <= now() - %(window)s"
                    "                          THEN now() ELSE f.window_started_at END",
                    params,
                )


def _lockout(gate: _Gate, limit: int, email_limit: int) -> str | None:
    """The lockout answer for a refused check, or None when it was refused only for checks
    under way (worth waiting for). Both answers read the same for emails without an account;
    when both locks hold, the later to lift is the one to wait for."""
    locks = [
        (ends, from_client)
        for failures, cap, ends, from_client in (
            (gate.email_failures, email_limit, gate.email_window_ends, False),
            (gate.client_failures, limit, gate.client_window_ends, True),
        )
        if failures >= cap and ends is not None
    ]
    if not locks:
        return None
    ends, from_client = max(locks)
    return locked_message(ends, from_client=from_client)


def locked_message(window_ends: datetime, *, from_client: bool) -> str:
    minutes = max(1, -(-int((window_ends - utcnow()).total_seconds()) // 60))
    whose = " from your address" if from_client else ""
    return f"too many failed logins for this email{whose}; try again in {minutes} minute" + (
        "s" if minutes > 1 else ""
    )
