"""Accounts and sessions: register, log in and out, who am I, switch organization, sessions.

A session row backs every token; the token carries its id. `check_session` is what the
authentication interceptor asks: the session must be live and the user still a member of the
token's organization, whose member row (not the token) gives the role.

Logins are throttled by `logins.LoginChecks` (see there): only failures count, they lock out the
client address that made them from the email (not the email for everyone), a much higher cap
bounds an email's failures from all addresses together, and at most five password checks of one
email run at once. Logins and registrations are also rate limited per client address
(`throttle.ClientRateLimit`), before anything else.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from marketsync.identity import (
    TOKEN_LIFETIME,
    Identity,
    UserTokenSigningKey,
    issue_user_token,
    utcnow,
)
from services.auth import store
from services.auth.logins import LoginChecks
from services.auth.models import (
    IssuedToken,
    LoginResult,
    Me,
    Membership,
    Registration,
    SessionInfo,
    User,
)
from services.auth.passwords import PasswordHasher
from services.auth.throttle import ClientRateLimit

# Ended sessions stay listed nowhere but are kept a day for whoever investigates an incident.
ENDED_SESSION_RETENTION = timedelta(days=1)
MIN_PASSWORD_LENGTH = 8
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
WRONG_CREDENTIALS = "the email or password is wrong"
SESSION_ENDED = "the session has ended; log in again"
# Deliberately loose: one @, a dot in the domain, no spaces. Deliverability is not checkable here.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
# PostgreSQL text cannot hold NUL, and no name or address needs a control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_email(email: str) -> str:
    """The email trimmed and lower-cased, or InvalidArgument if it is not an address."""
    normalized = email.strip().lower()
    if (
        len(normalized) > MAX_EMAIL_LENGTH
        or _CONTROL.search(normalized)
        or not _EMAIL.fullmatch(normalized)
    ):
        raise InvalidArgument(f"email: {email!r} is not a valid email address")
    return normalized


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(f"password: must be at least {MIN_PASSWORD_LENGTH} characters long")


def validate_name(value: str, field: str) -> str:
    """The trimmed name, or InvalidArgument naming the field."""
    name = value.strip()
    if not name:
        raise InvalidArgument(f"{field}: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"{field}: must be at most {MAX_NAME_LENGTH} characters")
    if _CONTROL.search(name):
        raise InvalidArgument(f"{field}: must not contain control characters")
    return name


class Accounts:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        # JWT_SECRET (HS256) or, in EdDSA mode, auth's private key, held by no other service.
        token_secret: UserTokenSigningKey,
        passwords: PasswordHasher,
        client_limit: ClientRateLimit | None = None,
        login_checks: LoginChecks | None = None,
    ) -> None:
        self._pool = pool
        self._token_secret = token_secret
        self._passwords = passwords
        self._client_limit = client_limit
        self._login_checks = login_checks or LoginChecks(pool)

    def _count_client_attempt(self, client: str | None) -> None:
        """Spend one of the client's attempts; None: not a client's call (no limit applies)."""
        if self._client_limit is not None and client is not None:
            self._client_limit.take(client)

    async def register(
        self,
        *,
        email: str,
        password: str,
        name: str,
        organization_name: str,
        client: str | None = None,
    ) -> Registration:
        self._count_client_attempt(client)
        email = normalize_email(email)
        validate_password(password)
        name = validate_name(name, "name")
        organization_name = validate_name(organization_name, "organization_name")
        password_hash = await self._passwords.hash(password)
        async with self._pool.connection() as conn, conn.transaction():
            user = await store.insert_user(
                conn, email=email, name=name, password_hash=password_hash
            )
            if user is None:
                raise AlreadyExists(f"email: an account with {email} already exists; log in")
            organization = await store.insert_organization(conn, organization_name)
            await store.insert_member(
                conn, organization_id=organization.id, user_id=user.id, role="owner"
            )
            issued = await self._open_session(conn, user.id, organization.id, "owner")
        return Registration(issued.token, issued.expires_at, user, organization)

    async def login(
        self,
        *,
        email: str,
        password: str,
        organization_id: int | None = None,
        client: str | None = None,
    ) -> LoginResult:
        self._count_client_attempt(client)
        email = email.strip().lower()
        if len(email) > MAX_EMAIL_LENGTH or _CONTROL.search(email):  # no account can have it
            raise Unauthenticated(WRONG_CREDENTIALS)

        async def check() -> User | None:
            async with self._pool.connection() as conn:
                found = await store.find_login(conn, email)
            user, password_hash = found if found is not None else (None, None)
            if not await self._passwords.verify(password, password_hash):
                return None
            return user

        user = await self._login_checks.run(email, check, client=client)
        if user is None:
            raise Unauthenticated(WRONG_CREDENTIALS)
        async with self._pool.connection() as conn, conn.transaction():
            organizations = await store.memberships(conn, user.id)
            membership = _pick_membership(organizations, organization_id)
            issued = await self._open_session(
                conn, user.id, membership.organization_id, membership.role
            )
        return LoginResult(
            issued.token, issued.expires_at, user, membership.organization_id, organizations
        )

    async def logout(self, identity: Identity) -> None:
        async with self._pool.connection() as conn:
            await store.revoke_session(
                conn, session_id=identity.session_id, user_id=identity.user_id
            )

    async def me(self, identity: Identity) -> Me:
        async with self._pool.connection() as conn:
            found = await store.user_with_memberships(conn, identity.user_id)
        if found is None:
            raise Unauthenticated(SESSION_ENDED)
        user, organizations = found
        current = [m for m in organizations if m.organization_id == identity.organization_id]
        if not current:
            raise Unauthenticated(SESSION_ENDED)
        return Me(user, identity.organization_id, current[0].role, organizations)

    async def switch_organization(self, identity: Identity, organization_id: int) -> IssuedToken:
        async with self._pool.connection() as conn, conn.transaction():
            role = await store.member_role(
                conn, organization_id=organization_id, user_id=identity.user_id
            )
            if role is None:
                raise PermissionDenied(
                    f"organization_id: you are not a member of organization {organization_id}"
                )
            return await self._open_session(conn, identity.user_id, organization_id, role)

    async def list_sessions(self, identity: Identity) -> tuple[SessionInfo, ...]:
        async with self._pool.connection() as conn:
            return await store.live_sessions(
                conn, user_id=identity.user_id, current_session_id=identity.session_id
            )

    async def revoke_session(self, identity: Identity, session_id: int) -> None:
        async with self._pool.connection() as conn:
            revoked = await store.revoke_session(
                conn, session_id=session_id, user_id=identity.user_id
            )
        if not revoked:
            raise NotFound(f"session_id: you have no session {session_id}")

    async def purge_ended(self) -> tuple[int, int]:
        """Delete long-ended sessions, stale failed-login counters and checks left by a replica
        that died: (sessions, counters and checks)."""
        async with self._pool.connection() as conn:
            sessions, counters = await store.purge_ended(
                conn,
                ended_before=ENDED_SESSION_RETENTION,
                window=self._login_checks.window,
                check_lease=self._login_checks.lease,
            )
        return sessions, counters + await self._login_checks.purge()

    async def check_session(self, identity: Identity) -> Identity:
        """The identity with its current role, or Unauthenticated if it no longer holds."""
        async with self._pool.connection() as conn:
            role = await store.live_session_role(
                conn,
                session_id=identity.session_id,
                user_id=identity.user_id,
                organization_id=identity.organization_id,
            )
        if role is None:
            raise Unauthenticated(SESSION_ENDED)
        return dataclasses.replace(identity, role=role)

    async def _open_session(
        self, conn: AsyncConnection, user_id: int, organization_id: int, role: str
    ) -> IssuedToken:
        now = utcnow()
        session_id = await store.insert_session(
            conn,
            user_id=user_id,
            organization_id=organization_id,
            created_at=now,
            expires_at=now + TOKEN_LIFETIME,
        )
        token, expires_at = issue_user_token(
            self._token_secret,
            user_id=user_id,
            organization_id=organization_id,
            role=role,
            session_id=session_id,
            now=now,
        )
        return IssuedToken(token, expires_at)


def _pick_membership(
    organizations: tuple[Membership, ...], organization_id: int | None
) -> Membership:
    if not organizations:
        raise PermissionDenied(
            "you are not a member of any organization; ask an admin of one to invite you"
        )
    if organization_id is None:
        return organizations[0]
    for membership in organizations:
        if membership.organization_id == organization_id:
            return membership
    raise PermissionDenied(
        f"organization_id: you are not a member of organization {organization_id}"
    )
