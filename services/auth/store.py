"""Every SQL statement of the auth service, parameterized.

Functions take an open connection so the domain decides what shares a transaction. Each row an
organization owns is read and written through its organization_id.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from services.auth.models import (
    DueSync,
    Invitation,
    Member,
    Membership,
    Organization,
    QueueState,
    ReceivedInvitation,
    RequestOrigin,
    SessionInfo,
    SyncCounts,
    SyncLog,
    User,
)
from services.auth.vault import Sealed

Conn = AsyncConnection

# ---- users -------------------------------------------------------------------------------


async def insert_user(conn: Conn, *, email: str, name: str, password_hash: str) -> User | None:
    """The new user, or None when the email (any case) is taken."""
    cursor = conn.cursor(row_factory=class_row(User))
    await cursor.execute(
        "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT ((lower(email))) DO NOTHING RETURNING id, email, name",
        (email, name, password_hash),
    )
    return await cursor.fetchone()


async def find_login(conn: Conn, email: str) -> tuple[User, str] | None:
    cursor = await conn.execute(
        "SELECT id, email, name, password_hash FROM users WHERE lower(email) = lower(%s)",
        (email,),
    )
    row = await cursor.fetchone()
    return None if row is None else (User(row[0], row[1], row[2]), row[3])


async def user_with_memberships(
    conn: Conn, user_id: int
) -> tuple[User, tuple[Membership, ...]] | None:
    """The user and their organizations, oldest membership first, in one round trip (GetMe's);
    None if the user is gone."""
    cursor = await conn.execute(
        "SELECT u.id, u.email, u.name, m.organization_id, o.name, m.role FROM users u"
        " LEFT JOIN (organization_members m JOIN organizations o ON o.id = m.organization_id)"
        " ON m.user_id = u.id"
        " WHERE u.id = %s ORDER BY m.created_at, m.organization_id",
        (user_id,),
    )
    rows = await cursor.fetchall()
    if not rows:
        return None
    user = User(*rows[0][:3])
    memberships = tuple(
        Membership(organization_id, name, role)
        for *_, organization_id, name, role in rows
        if organization_id is not None
    )
    return user, memberships


# ---- organizations and members -----------------------------------------------------------


async def insert_organization(conn: Conn, name: str) -> Organization:
    cursor = conn.cursor(row_factory=class_row(Organization))
    await cursor.execute("INSERT INTO organizations (name) VALUES (%s) RETURNING id, name", (name,))
    organization = await cursor.fetchone()
    assert organization is not None
    return organization


async def lock_organization(conn: Conn, organization_id: int) -> None:
    """Serialize membership changes of one organization until the transaction ends."""
    await conn.execute("SELECT 1 FROM organizations WHERE id = %s FOR UPDATE", (organization_id,))


async def insert_member(conn: Conn, *, organization_id: int, user_id: int, role: str) -> bool:
    """False when the user already is a member."""
    cursor = await conn.execute(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (organization_id, user_id) DO NOTHING",
        (organization_id, user_id, role),
    )
    return cursor.rowcount == 1


async def memberships(conn: Conn, user_id: int) -> tuple[Membership, ...]:
    """The user's organizations, oldest membership first."""
    cursor = conn.cursor(row_factory=class_row(Membership))
    await cursor.execute(
        "SELECT m.organization_id, o.name, m.role FROM organization_members m"
        " JOIN organizations o ON o.id = m.organization_id"
        " WHERE m.user_id = %s ORDER BY m.created_at, m.organization_id",
        (user_id,),
    )
    return tuple(await cursor.fetchall())


async def member_role(conn: Conn, *, organization_id: int, user_id: int) -> str | None:
    cursor = await conn.execute(
        "SELECT role FROM organization_members WHERE organization_id = %s AND user_id = %s",
        (organization_id, user_id),
    )
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def list_members(conn: Conn, organization_id: int) -> tuple[Member, ...]:
    cursor = conn.cursor(row_factory=class_row(Member))
    await cursor.execute(
        "SELECT u.id AS user_id, u.email, u.name, m.role FROM organization_members m"
        " JOIN users u ON u.id = m.user_id WHERE m.organization_id = %s"
        " ORDER BY m.created_at, u.id",
        (organization_id,),
    )
    return tuple(await cursor.fetchall())


async def get_member(conn: Conn, *, organization_id: int, user_id: int) -> Member | None:
    cursor = conn.cursor(row_factory=class_row(Member))
    await cursor.execute(
        "SELECT u.id AS user_id, u.email, u.name, m.role FROM organization_members m"
        " JOIN users u ON u.id = m.user_id WHERE m.organization_id = %s AND m.user_id = %s",
        (organization_id, user_id),
    )
    return await cursor.fetchone()


async def count_owners(conn: Conn, organization_id: int) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM organization_members WHERE organization_id = %s AND role = 'owner'",
        (organization_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def update_member_role(conn: Conn, *, organization_id: int, user_id: int, role: str) -> None:
    await conn.execute(
        "UPDATE organization_members SET role = %s WHERE organization_id = %s AND user_id = %s",
        (role, organization_id, user_id),
    )


async def delete_member(conn: Conn, *, organization_id: int, user_id: int) -> None:
    await conn.execute(
        "DELETE FROM organization_members WHERE organization_id = %s AND user_id = %s",
        (organization_id, user_id),
    )


# ---- sessions ------------------------------------------------------------------------------


async def insert_session(
    conn: Conn, *, user_id: int, organization_id: int, created_at: datetime, expires_at: datetime
) -> int:
    cursor = await conn.execute(
        "INSERT INTO sessions (user_id, organization_id, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (user_id, organization_id, created_at, expires_at),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def live_session_role(
    conn: Conn, *, session_id: int, user_id: int, organization_id: int
) -> str | None:
    """The member role behind a session that is neither revoked nor expired, else None."""
    cursor = await conn.execute(
        "SELECT m.role FROM sessions s JOIN organization_members m"
        " ON m.organization_id = s.organization_id AND m.user_id = s.user_id"
        " WHERE s.id = %s AND s.user_id = %s AND s.organization_id = %s"
        " AND s.revoked_at IS NULL AND s.expires_at > now()",
        (session_id, user_id, organization_id),
    )
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def revoke_member_sessions(conn: Conn, *, organization_id: int, user_id: int) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = now()"
        " WHERE organization_id = %s AND user_id = %s AND revoked_at IS NULL",
        (organization_id, user_id),
    )


async def revoke_session(conn: Conn, *, session_id: int, user_id: int) -> bool:
    """False when the user has no such session; revoking twice keeps the first time."""
    cursor = await conn.execute(
        "UPDATE sessions SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = %s AND user_id = %s",
        (session_id, user_id),
    )
    return cursor.rowcount == 1


async def live_sessions(
    conn: Conn, *, user_id: int, current_session_id: int
) -> tuple[SessionInfo, ...]:
    cursor = conn.cursor(row_factory=class_row(SessionInfo))
    await cursor.execute(
        "SELECT id, created_at, expires_at, id = %s AS current FROM sessions"
        " WHERE user_id = %s AND revoked_at IS NULL AND expires_at > now()"
        " ORDER BY created_at DESC, id DESC",
        (current_session_id, user_id),
    )
    return tuple(await cursor.fetchall())


# ---- housekeeping ------------------------------------------------------------------------


async def purge_ended(
    conn: Conn, *, ended_before: timedelta, window: timedelta, check_lease: timedelta
) -> tuple[int, int]:
    """Delete sessions that expired or were revoked longer ago than `ended_before`, failed-
    login counters whose window has passed and checks left by a replica that died; answer how
    many sessions, and how many counters and checks."""
    sessions = await conn.execute(
        "DELETE FROM sessions"
        " WHERE expires_at < now() - %(ended)s OR revoked_at < now() - %(ended)s",
        {"ended": ended_before},
    )
    failures = await conn.execute(
        "DELETE FROM login_failures WHERE window_started_at <= now() - %s", (window,)
    )
    checks = await conn.execute(
        "DELETE FROM login_checks WHERE started_at <= now() - %s", (check_lease,)
    )
    return sessions.rowcount, failures.rowcount + checks.rowcount


# ---- invitations ---------------------------------------------------------------------------


async def is_member_email(conn: Conn, *, organization_id: int, email: str) -> bool:
    cursor = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM organization_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.organization_id = %s AND lower(u.email) = lower(%s))",
        (organization_id, email),
    )
    row = await cursor.fetchone()
    assert row is not None
    return bool(row[0])


async def upsert_invitation(
    conn: Conn,
    *,
    organization_id: int,
    email: str,
    role: str,
    invited_by: int,
    lifetime: timedelta,
) -> Invitation:
    """The organization's pending invitation of the email, new or renewed (role, inviter and
    expiry replaced: inviting again is how an expired invitation comes back)."""
    cursor = conn.cursor(row_factory=class_row(Invitation))
    await cursor.execute(
        "INSERT INTO invitations (organization_id, email, role, invited_by, expires_at)"
        " VALUES (%(organization_id)s, lower(%(email)s), %(role)s, %(invited_by)s,"
        "         now() + %(lifetime)s)"
        " ON CONFLICT (organization_id, email) WHERE status = 'pending' DO UPDATE SET"
        " role = excluded.role, invited_by = excluded.invited_by, created_at = now(),"
        " expires_at = excluded.expires_at"
        " RETURNING id, email, role, expires_at",
        {
            "organization_id": organization_id,
            "email": email,
            "role": role,
            "invited_by": invited_by,
            "lifetime": lifetime,
        },
    )
    invitation = await cursor.fetchone()
    assert invitation is not None
    return invitation


_PENDING = sql.SQL("i.status = 'pending' AND i.expires_at > now()")


async def pending_invitations(conn: Conn, organization_id: int) -> tuple[Invitation, ...]:
    """The organization's invitations that can still be accepted, oldest first."""
    cursor = conn.cursor(row_factory=class_row(Invitation))
    await cursor.execute(
        sql.SQL(
            "SELECT i.id, i.email, i.role, i.expires_at FROM invitations i"
            " WHERE i.organization_id = %s AND {pending} ORDER BY i.created_at, i.id"
        ).format(pending=_PENDING),
        (organization_id,),
    )
    return tuple(await cursor.fetchall())


async def get_pending_invitation(
    conn: Conn, *, organization_id: int, invitation_id: int
) -> Invitation | None:
    cursor = conn.cursor(row_factory=class_row(Invitation))
    await cursor.execute(
        sql.SQL(
            "SELECT i.id, i.email, i.role, i.expires_at FROM invitations i"
            " WHERE i.id = %s AND i.organization_id = %s AND {pending}"
        ).format(pending=_PENDING),
        (invitation_id, organization_id),
    )
    return await cursor.fetchone()


async def received_invitations(conn: Conn, user_id: int) -> tuple[ReceivedInvitation, ...]:
    """Pending invitations of the user's email, oldest first."""
    cursor = conn.cursor(row_factory=class_row(ReceivedInvitation))
    await cursor.execute(
        sql.SQL(
            "SELECT i.id, o.id AS organization_id, o.name AS organization_name, i.role,"
            " i.expires_at FROM users u"
            " JOIN invitations i ON i.email = lower(u.email)"
            " JOIN organizations o ON o.id = i.organization_id"
            " WHERE u.id = %s AND {pending} ORDER BY i.created_at, i.id"
        ).format(pending=_PENDING),
        (user_id,),
    )
    return tuple(await cursor.fetchall())


async def received_invitation(
    conn: Conn, *, user_id: int, invitation_id: int
) -> ReceivedInvitation | None:
    """One pending invitation of the user's email; None when it is not theirs or not pending."""
    cursor = conn.cursor(row_factory=class_row(ReceivedInvitation))
    await cursor.execute(
        sql.SQL(
            "SELECT i.id, o.id AS organization_id, o.name AS organization_name, i.role,"
            " i.expires_at FROM users u"
            " JOIN invitations i ON i.email = lower(u.email)"
            " JOIN organizations o ON o.id = i.organization_id"
            " WHERE u.id = %s AND i.id = %s AND {pending}"
        ).format(pending=_PENDING),
        (user_id, invitation_id),
    )
    return await cursor.fetchone()


async def end_invitation(
    conn: Conn, *, invitation_id: int, organization_id: int, status: str, ended_by: int
) -> bool:
    """Mark a pending, unexpired invitation accepted, declined or revoked. False when it no
    longer is pending (another call ended it first): only one ending ever wins."""
    cursor = await conn.execute(
        sql.SQL(
            "UPDATE invitations i SET status = %s, ended_at = now(), ended_by = %s"
            " WHERE i.id = %s AND i.organization_id = %s AND {pending}"
        ).format(pending=_PENDING),
        (status, ended_by, invitation_id, organization_id),
    )
    return cursor.rowcount == 1


# ---- marketplace credentials ---------------------------------------------------------------


async def upsert_credentials(
    conn: Conn, *, organization_id: int, marketplace: str, sealed: Sealed
) -> tuple[bool, datetime]:
    """Store the sealed credentials as active; return (is_active, updated_at)."""
    cursor = await conn.execute(
        "INSERT INTO api_credentials (organization_id, marketplace, key_id, nonce, ciphertext)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (organization_id, marketplace) DO UPDATE SET"
        " key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,"
        " is_active = true, updated_at = now()"
        " RETURNING is_active, updated_at",
        (organization_id, marketplace, sealed.key_id, sealed.nonce, sealed.ciphertext),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


StoredCredentials = tuple[str, bool, datetime, Sealed]  # marketplace, is_active, updated_at


def _stored(row: tuple[Any, ...]) -> StoredCredentials:
    marketplace, is_active, updated_at, key_id, nonce, ciphertext = row
    return marketplace, is_active, updated_at, Sealed(key_id, bytes(nonce), bytes(ciphertext))


_CREDENTIAL_COLUMNS = sql.SQL("marketplace, is_active, updated_at, key_id, nonce, ciphertext")


async def list_credentials(conn: Conn, organization_id: int) -> list[StoredCredentials]:
    cursor = await conn.execute(
        sql.SQL(
            "SELECT {} FROM api_credentials WHERE organization_id = %s ORDER BY marketplace"
        ).format(_CREDENTIAL_COLUMNS),
        (organization_id,),
    )
    return [_stored(row) for row in await cursor.fetchall()]


async def get_credentials(
    conn: Conn, *, organization_id: int, marketplace: str
) -> StoredCredentials | None:
    cursor = await conn.execute(
        sql.SQL(
            "SELECT {} FROM api_credentials WHERE organization_id = %s AND marketplace = %s"
        ).format(_CREDENTIAL_COLUMNS),
        (organization_id, marketplace),
    )
    row = await cursor.fetchone()
    return None if row is None else _stored(row)


async def delete_credentials(conn: Conn, *, organization_id: int, marketplace: str) -> bool:
    cursor = await conn.execute(
        "DELETE FROM api_credentials WHERE organization_id = %s AND marketplace = %s",
        (organization_id, marketplace),
    )
    return cursor.rowcount == 1


# ---- sync logs -----------------------------------------------------------------------------

_SYNC_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(field.name) for field in dataclasses.fields(SyncLog)
)
_DURATION_MS = sql.SQL("(floor(extract(epoch FROM now() - started_at) * 1000))::bigint")
_ACTIVE = sql.SQL("status IN ('queued', 'running')")
# Attempt n waits backoff * 2**(n-1) before it may run again.
_BACKOFF_UNTIL = sql.SQL("now() + %(backoff)s * power(2, greatest(attempt, 1) - 1)")
# A run that ends: failed for good once it has had its attempts, otherwise back to the queue.
_END_OR_REQUEUE = sql.SQL(
    "status = CASE WHEN attempt >= %(max_attempts)s THEN 'failed' ELSE 'queued' END,"
    " finished_at = CASE WHEN attempt >= %(max_attempts)s THEN now() END,"
    " duration_ms = CASE WHEN attempt >= %(max_attempts)s THEN {duration} END,"
    " run_after = {backoff}, claim = NULL, replica = NULL, heartbeat_at = now()"
).format(duration=_DURATION_MS, backoff=_BACKOFF_UNTIL)


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff: timedelta

    def params(self) -> dict[str, object]:
        return {"max_attempts": self.max_attempts, "backoff": self.backoff}


async def lock_sync_slot(conn: Conn, *, organization_id: int, marketplace: str) -> None:
    """Serialize sync starts of one organization and marketplace until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"sync_logs:{organization_id}:{marketplace}",),
    )


async def insert_queued_sync(
    conn: Conn,
    *,
    organization_id: int,
    marketplace: str,
    trigger: str,
    started_by: int | None,
    origin: RequestOrigin,
) -> SyncLog | None:
    """The new queued log, or None when one is already queued or running."""
    cursor = conn.cursor(row_factory=class_row(SyncLog))
    await cursor.execute(
        sql.SQL(
            "INSERT INTO sync_logs"
            " (organization_id, marketplace, trigger, started_by, traceparent, request_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (organization_id, marketplace) WHERE {active} DO NOTHING"
            " RETURNING {columns}"
        ).format(active=_ACTIVE, columns=_SYNC_COLUMNS),
        (
            organization_id,
            marketplace,
            trigger,
            started_by,
            origin.traceparent,
            origin.request_id,
        ),
    )
    return await cursor.fetchone()


async def enqueue_due_syncs(conn: Conn, *, interval: timedelta, jitter: timedelta) -> list[DueSync]:
    """Queue a scheduled sync of every active credential whose organization and marketplace has
    none queued or running and none queued within the interval; each may run after a random
    delay within the jitter, so organizations do not all reach a marketplace at once."""
    cursor = conn.cursor(row_factory=class_row(DueSync))
    await cursor.execute(
        sql.SQL(
            "INSERT INTO sync_logs (organization_id, marketplace, trigger, run_after)"
            " SELECT c.organization_id, c.marketplace, 'scheduled',"
            "   now() + random() * %(jitter)s"
            " FROM api_credentials c WHERE c.is_active AND NOT EXISTS ("
            "   SELECT 1 FROM sync_logs s WHERE s.organization_id = c.organization_id"
            "   AND s.marketplace = c.marketplace"
            "   AND (s.queued_at > now() - %(interval)s OR s.{active}))"
            " ORDER BY c.organization_id, c.marketplace"
            " ON CONFLICT (organization_id, marketplace) WHERE {active} DO NOTHING"
            " RETURNING organization_id, marketplace"
        ).format(active=_ACTIVE),
        {"interval": interval, "jitter": jitter},
    )
    return await cursor.fetchall()


async def requeue_expired(conn: Conn, *, lease: timedelta, policy: RetryPolicy, error: str) -> int:
    """Runs whose lease ran out (their replica died): back to the queue, or failed for good
    after their last attempt. Answers how many."""
    cursor = await conn.execute(
        sql.SQL(
            "UPDATE sync_logs SET {}, error = %(error)s"
            " WHERE status = 'running' AND heartbeat_at < now() - %(lease)s"
        ).format(_END_OR_REQUEUE),
        {**policy.params(), "lease": lease, "error": error},
    )
    return cursor.rowcount


async def claim_syncs(
    conn: Conn, *, replica: str, limit: int
) -> list[tuple[SyncLog, str, RequestOrigin]]:
    """Up to `limit` queued logs that may run now, oldest first, made running under a new claim.

    SKIP LOCKED: replicas claiming at once each get other logs, without waiting on each other.
    """
    cursor = await conn.execute(
        sql.SQL(
            "UPDATE sync_logs SET status = 'running', attempt = attempt + 1,"
            " claim = gen_random_uuid(), replica = %s, started_at = now(), heartbeat_at = now()"
            " WHERE id IN (SELECT id FROM sync_logs WHERE status = 'queued' AND run_after <= now()"
            "   ORDER BY run_after, id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING claim::text, traceparent, request_id, {}"
        ).format(_SYNC_COLUMNS),
        (replica, limit),
    )
    claimed = [
        (SyncLog(*row[3:]), str(row[0]), RequestOrigin(row[1], row[2]))
        for row in await cursor.fetchall()
    ]
    return sorted(claimed, key=lambda pair: pair[0].id)


_CLAIMED = sql.SQL(
    "id = %(sync_id)s AND organization_id = %(organization_id)s AND claim = %(claim)s"
)


def _claimed_params(
    organization_id: int, sync_id: int, claim: str, counts: SyncCounts
) -> dict[str, object]:
    return {
        "organization_id": organization_id,
        "sync_id": sync_id,
        "claim": claim,
        **dataclasses.asdict(counts),
    }


_SET_COUNTS = sql.SQL(
    "items_fetched = %(items_fetched)s, items_written = %(items_written)s,"
    " items_unchanged = %(items_unchanged)s, items_failed = %(items_failed)s,"
    " read_units = %(read_units)s, write_units = %(write_units)s, items_total = %(items_total)s"
)


async def heartbeat_sync(
    conn: Conn, *, organization_id: int, sync_id: int, claim: str, counts: SyncCounts
) -> bool:
    """False when the claim no longer holds (the run ended, or its lease ran out)."""
    cursor = await conn.execute(
        sql.SQL("UPDATE sync_logs SET heartbeat_at = now(), {counts} WHERE {claimed}").format(
            counts=_SET_COUNTS, claimed=_CLAIMED
        ),
        _claimed_params(organization_id, sync_id, claim, counts),
    )
    return cursor.rowcount == 1


async def finish_sync(
    conn: Conn,
    *,
    organization_id: int,
    sync_id: int,
    claim: str,
    status: str,
    counts: SyncCounts,
    error: str | None,
) -> SyncLog | None:
    """The ended log, or None when the claim no longer holds."""
    cursor = conn.cursor(row_factory=class_row(SyncLog))
    await cursor.execute(
        sql.SQL(
            "UPDATE sync_logs SET status = %(status)s, {counts}, error = %(error)s,"
            " finished_at = now(), heartbeat_at = now(), duration_ms = {duration},"
            " claim = NULL WHERE {claimed} RETURNING {columns}"
        ).format(
            counts=_SET_COUNTS, duration=_DURATION_MS, claimed=_CLAIMED, columns=_SYNC_COLUMNS
        ),
        {
            **_claimed_params(organization_id, sync_id, claim, counts),
            "status": status,
            "error": error,
        },
    )
    return await cursor.fetchone()


async def retry_sync(
    conn: Conn,
    *,
    organization_id: int,
    sync_id: int,
    claim: str,
    counts: SyncCounts,
    error: str,
    policy: RetryPolicy,
) -> SyncLog | None:
    """A run that failed in a way that may pass: queued again after a backoff, or failed for
    good after its last attempt. None when the claim no longer holds."""
    cursor = conn.cursor(row_factory=class_row(SyncLog))
    await cursor.execute(
        sql.SQL(
            "UPDATE sync_logs SET {end}, {counts}, error = %(error)s"
            " WHERE {claimed} RETURNING {columns}"
        ).format(end=_END_OR_REQUEUE, counts=_SET_COUNTS, claimed=_CLAIMED, columns=_SYNC_COLUMNS),
        {
            **_claimed_params(organization_id, sync_id, claim, counts),
            **policy.params(),
            "error": error,
        },
    )
    return await cursor.fetchone()


async def release_sync(
    conn: Conn, *, organization_id: int, sync_id: int, claim: str, counts: SyncCounts
) -> bool:
    """Hand a run back to the queue at once (its replica is stopping); the run does not count
    as an attempt. False when the claim no longer holds."""
    cursor = await conn.execute(
        sql.SQL(
            "UPDATE sync_logs SET status = 'queued', attempt = attempt - 1, claim = NULL,"
            " replica = NULL, run_after = now(), heartbeat_at = now(), {counts}"
            " WHERE {claimed}"
        ).format(counts=_SET_COUNTS, claimed=_CLAIMED),
        _claimed_params(organization_id, sync_id, claim, counts),
    )
    return cursor.rowcount == 1


async def get_sync(conn: Conn, *, organization_id: int, sync_id: int) -> SyncLog | None:
    cursor = conn.cursor(row_factory=class_row(SyncLog))
    await cursor.execute(
        sql.SQL("SELECT {} FROM sync_logs WHERE id = %s AND organization_id = %s").format(
            _SYNC_COLUMNS
        ),
        (sync_id, organization_id),
    )
    return await cursor.fetchone()


async def list_syncs(
    conn: Conn, *, organization_id: int, limit: int, before_id: int | None
) -> list[SyncLog]:
    """Newest first; only ids below before_id when it is given."""
    cursor = conn.cursor(row_factory=class_row(SyncLog))
    await cursor.execute(
        sql.SQL(
            "SELECT {} FROM sync_logs WHERE organization_id = %s"
            " AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s"
        ).format(_SYNC_COLUMNS),
        (organization_id, before_id, before_id, limit),
    )
    return await cursor.fetchall()


async def queue_state(conn: Conn, *, overdue_after: timedelta) -> QueueState:
    """Queued and running syncs by marketplace (read through the index of active logs), and the
    organizations whose last completed sync of a connected marketplace is older than
    `overdue_after` (or, never synced, whose credentials are)."""
    cursor = await conn.execute(
        sql.SQL(
            "SELECT marketplace, count(*) FILTER (WHERE status = 'queued'),"
            " extract(epoch FROM now() - min(run_after)"
            "   FILTER (WHERE status = 'queued' AND run_after <= now())),"
            " extract(epoch FROM now() - min(started_at) FILTER (WHERE status = 'running'))"
            " FROM sync_logs WHERE {active} GROUP BY marketplace"
        ).format(active=_ACTIVE)
    )
    queued, oldest_queued, oldest_running = {}, {}, {}
    for marketplace, count, queued_for, running_for in await cursor.fetchall():
        queued[marketplace] = int(count)
        oldest_queued[marketplace] = float(queued_for or 0)
        oldest_running[marketplace] = float(running_for or 0)
    cursor = await conn.execute(
        "SELECT count(DISTINCT c.organization_id) FROM api_credentials c"
        " WHERE c.is_active AND c.created_at < now() - %(overdue)s AND NOT EXISTS ("
        "   SELECT 1 FROM sync_logs s WHERE s.organization_id = c.organization_id"
        "   AND s.marketplace = c.marketplace AND s.status IN ('succeeded', 'partial')"
        "   AND s.finished_at > now() - %(overdue)s)",
        {"overdue": overdue_after},
    )
    row = await cursor.fetchone()
    return QueueState(queued, oldest_queued, oldest_running, int(row[0]) if row else 0)
