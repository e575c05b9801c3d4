"""Organizations and their members.

Members join by invitation (see `invitations`). Admins and owners manage members; only owners
grant or take away the owner role; an organization always keeps at least one owner. Membership
changes of one organization run one at a time (its row is locked) and re-read the caller's role
inside that transaction, so two admins acting at once cannot, say, both demote the two last
owners.

Refusing to demote or remove the last owner is FailedPrecondition: the request is well formed,
the organization's current state forbids it (it becomes possible once another owner exists).
Both it and InvalidArgument answer 400, as the contract asks.
"""

from __future__ import annotations

import dataclasses

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from marketsync.identity import ROLES, Identity
from services.auth import store
from services.auth.accounts import validate_name
from services.auth.models import Member, Organization


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(f"role: {role!r} is not one of {', '.join(reversed(ROLES))}")
    return role


class Organizations:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, identity: Identity, name: str) -> Organization:
        """A new organization owned by the caller."""
        name = validate_name(name, "name")
        async with self._pool.connection() as conn, conn.transaction():
            organization = await store.insert_organization(conn, name)
            await store.insert_member(
                conn, organization_id=organization.id, user_id=identity.user_id, role="owner"
            )
        return organization

    async def list_members(self, identity: Identity) -> tuple[Member, ...]:
        async with self._pool.connection() as conn:
            return await store.list_members(conn, identity.organization_id)

    async def change_role(self, identity: Identity, *, user_id: int, role: str) -> Member:
        validate_role(role)
        async with self._pool.connection() as conn, conn.transaction():
            caller_role = await lock_as_admin(conn, identity)
            target = await _member(conn, identity.organization_id, user_id)
            check_owner_rule(caller_role, touches_owner="owner" in (target.role, role))
            if target.role == "owner" and role != "owner":
                await _keep_an_owner(conn, identity.organization_id, "demoted")
            await store.update_member_role(
                conn, organization_id=identity.organization_id, user_id=user_id, role=role
            )
        return Member(target.user_id, target.email, target.name, role)

    async def remove_member(self, identity: Identity, user_id: int) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            caller_role = await lock_as_admin(conn, identity)
            target = await _member(conn, identity.organization_id, user_id)
            check_owner_rule(caller_role, touches_owner=target.role == "owner")
            if target.role == "owner":
                await _keep_an_owner(conn, identity.organization_id, "removed")
            await store.delete_member(
                conn, organization_id=identity.organization_id, user_id=user_id
            )
            # Adding the user back later must not bring their old tokens back to life.
            await store.revoke_member_sessions(
                conn, organization_id=identity.organization_id, user_id=user_id
            )


async def lock_as_admin(conn: AsyncConnection, identity: Identity) -> str:
    """Lock the organization's membership, then return the caller's role if admin or owner."""
    await store.lock_organization(conn, identity.organization_id)
    role = await store.member_role(
        conn, organization_id=identity.organization_id, user_id=identity.user_id
    )
    if role is None:
        raise PermissionDenied("you are no longer a member of this organization")
    dataclasses.replace(identity, role=role).require_role("admin")
    return role


def check_owner_rule(caller_role: str, *, touches_owner: bool) -> None:
    if touches_owner and caller_role != "owner":
        raise PermissionDenied("only owners can grant or take away the owner role")


async def _member(conn: AsyncConnection, organization_id: int, user_id: int) -> Member:
    member = await store.get_member(conn, organization_id=organization_id, user_id=user_id)
    if member is None:
        raise NotFound(f"user_id: user {user_id} is not a member of this organization")
    return member


async def _keep_an_owner(conn: AsyncConnection, organization_id: int, verb: str) -> None:
    if await store.count_owners(conn, organization_id) <= 1:
        raise FailedPrecondition(
            f"user_id: the last owner of the organization cannot be {verb}; "
            "make another member owner first"
        )
