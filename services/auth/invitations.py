"""Invitations: how a user joins an organization, with their consent.

An admin invites an email in a role (only owners invite owners). The answer is the same
whether or not anyone has registered that email, so inviting cannot be used to find out who
has an account; only an email that already is a member of the organization is refused, which
the admin can see in the member list anyway. The user holding that email, registered then or
later, sees the invitation among their own and accepts it (membership starts then, with the
invited role) or declines it. An invitation is pending for seven days; admins list and revoke
pending ones, and inviting the same email again renews it.

Every invitation of a user is matched by their account's email: nobody can accept, decline or
even see another's. Expired, revoked, answered and someone else's invitations all answer the
same NOT_FOUND. Endings are decided by one conditional UPDATE, so of an accept and a revoke
racing, exactly one wins; organization membership changes still run one at a time per
organization (its row is locked first, as in `organizations`).
"""

from __future__ import annotations

from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, NotFound
from marketsync.identity import Identity
from services.auth import store
from services.auth.accounts import normalize_email
from services.auth.models import Invitation, Member, ReceivedInvitation
from services.auth.organizations import check_owner_rule, lock_as_admin, validate_role

INVITATION_LIFETIME = timedelta(days=7)


def _no_such_invitation(invitation_id: int) -> NotFound:
    # One answer for expired, revoked, answered, unknown and someone else's invitations.
    return NotFound(f"invitation_id: you have no pending invitation {invitation_id}")


class Invitations:
    def __init__(
        self, pool: AsyncConnectionPool, *, lifetime: timedelta = INVITATION_LIFETIME
    ) -> None:
        self._pool = pool
        self._lifetime = lifetime

    async def invite(self, identity: Identity, *, email: str, role: str) -> Invitation:
        email = normalize_email(email)
        validate_role(role)
        async with self._pool.connection() as conn, conn.transaction():
            caller_role = await lock_as_admin(conn, identity)
            check_owner_rule(caller_role, touches_owner=role == "owner")
            if await store.is_member_email(
                conn, organization_id=identity.organization_id, email=email
            ):
                raise AlreadyExists(f"email: {email} is already a member of this organization")
            return await store.upsert_invitation(
                conn,
                organization_id=identity.organization_id,
                email=email,
                role=role,
                invited_by=identity.user_id,
                lifetime=self._lifetime,
            )

    async def list_pending(self, identity: Identity) -> tuple[Invitation, ...]:
        """The organization's pending invitations: admins and owners only (they hold emails)."""
        identity.require_role("admin")
        async with self._pool.connection() as conn:
            return await store.pending_invitations(conn, identity.organization_id)

    async def revoke(self, identity: Identity, invitation_id: int) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            caller_role = await lock_as_admin(conn, identity)
            invitation = await store.get_pending_invitation(
                conn, organization_id=identity.organization_id, invitation_id=invitation_id
            )
            if invitation is None:
                raise NotFound(
                    f"invitation_id: this organization has no pending invitation {invitation_id}"
                )
            check_owner_rule(caller_role, touches_owner=invitation.role == "owner")
            await store.end_invitation(
                conn,
                invitation_id=invitation_id,
                organization_id=identity.organization_id,
                status="revoked",
                ended_by=identity.user_id,
            )

    async def received(self, identity: Identity) -> tuple[ReceivedInvitation, ...]:
        """The caller's pending invitations, whichever organization the token acts on."""
        async with self._pool.connection() as conn:
            return await store.received_invitations(conn, identity.user_id)

    async def accept(self, identity: Identity, invitation_id: int) -> Member:
        async with self._pool.connection() as conn, conn.transaction():
            invitation = await store.received_invitation(
                conn, user_id=identity.user_id, invitation_id=invitation_id
            )
            if invitation is None:
                raise _no_such_invitation(invitation_id)
            organization_id = invitation.organization_id
            await store.lock_organization(conn, organization_id)
            if not await store.end_invitation(
                conn,
                invitation_id=invitation_id,
                organization_id=organization_id,
                status="accepted",
                ended_by=identity.user_id,
            ):
                raise _no_such_invitation(invitation_id)  # revoked or expired meanwhile
            # Raising rolls the transaction back: the invitation stays pending.
            joined = await store.insert_member(
                conn,
                organization_id=organization_id,
                user_id=identity.user_id,
                role=invitation.role,
            )
            if not joined:
                raise AlreadyExists(
                    f"invitation_id: you already are a member of {invitation.organization_name}"
                )
            member = await store.get_member(
                conn, organization_id=organization_id, user_id=identity.user_id
            )
        assert member is not None
        return member

    async def decline(self, identity: Identity, invitation_id: int) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            invitation = await store.received_invitation(
                conn, user_id=identity.user_id, invitation_id=invitation_id
            )
            if invitation is None or not await store.end_invitation(
                conn,
                invitation_id=invitation_id,
                organization_id=invitation.organization_id,
                status="declined",
                ended_by=identity.user_id,
            ):
                raise _no_such_invitation(invitation_id)
