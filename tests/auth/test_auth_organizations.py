"""Organizations and members: who may do what, and the last owner stays."""

from __future__ import annotations

import pytest

from marketsync.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from marketsync.identity import Identity
from services.auth.invitations import Invitations
from services.auth.organizations import Organizations

from .conftest import Join, Signup

pytestmark = pytest.mark.anyio


async def test_created_organization_is_owned_by_its_creator(
    signup: Signup, organizations: Organizations
) -> None:
    ann = await signup("ann")
    created = await organizations.create(ann.identity, "  Acme  ")
    assert created.name == "Acme"
    inside = Identity(ann.identity.user_id, created.id, "owner", 0)
    assert [(m.user_id, m.role) for m in await organizations.list_members(inside)] == [
        (ann.identity.user_id, "owner")
    ]


async def test_members_are_listed_for_the_token_organization_only(
    signup: Signup, organizations: Organizations, join: Join
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    await join(ann.identity, bob, "viewer")
    members = await organizations.list_members(ann.identity)
    assert [(m.email, m.role) for m in members] == [(ann.email, "owner"), (bob.email, "viewer")]
    assert [m.email for m in await organizations.list_members(cat.identity)] == [cat.email]


async def test_admins_manage_members_but_not_owners(
    signup: Signup, organizations: Organizations, invitations: Invitations, join: Join
) -> None:
    ann, bob, cat, dan = [await signup(n) for n in ("ann", "bob", "cat", "dan")]
    bob_admin = await join(ann.identity, bob, "admin")
    await join(ann.identity, cat, "member")
    await join(bob_admin, dan, "viewer")
    await organizations.change_role(bob_admin, user_id=dan.identity.user_id, role="member")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.change_role(bob_admin, user_id=cat.identity.user_id, role="owner")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.change_role(bob_admin, user_id=ann.identity.user_id, role="admin")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.remove_member(bob_admin, ann.identity.user_id)
    with pytest.raises(PermissionDenied, match="only owners"):
        await invitations.invite(bob_admin, email="x" + ann.email, role="owner")
    await organizations.remove_member(bob_admin, dan.identity.user_id)
    emails = [m.email for m in await organizations.list_members(ann.identity)]
    assert emails == [ann.email, bob.email, cat.email]


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_members_and_viewers_cannot_manage(
    signup: Signup, organizations: Organizations, invitations: Invitations, join: Join, role: str
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    weak = await join(ann.identity, bob, role)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await invitations.invite(weak, email=cat.email, role="viewer")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await organizations.change_role(weak, user_id=bob.identity.user_id, role="admin")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await organizations.remove_member(weak, ann.identity.user_id)


async def test_role_from_the_member_row_beats_the_token(
    signup: Signup, invitations: Invitations, join: Join
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    bob_claims_owner = Identity(bob.identity.user_id, ann.identity.organization_id, "owner", 0)
    await join(ann.identity, bob, "viewer")
    with pytest.raises(PermissionDenied):
        await invitations.invite(bob_claims_owner, email=cat.email, role="viewer")


async def test_the_last_owner_stays(
    signup: Signup, organizations: Organizations, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(FailedPrecondition, match=r"last owner .* cannot be demoted"):
        await organizations.change_role(ann.identity, user_id=ann.identity.user_id, role="admin")
    with pytest.raises(FailedPrecondition, match=r"last owner .* cannot be removed"):
        await organizations.remove_member(ann.identity, ann.identity.user_id)
    bob_owner = await join(ann.identity, bob, "owner")
    await organizations.change_role(bob_owner, user_id=ann.identity.user_id, role="admin")
    members = await organizations.list_members(bob_owner)
    assert [(m.email, m.role) for m in members] == [(ann.email, "admin"), (bob.email, "owner")]


async def test_acting_on_a_non_member_is_not_found(
    signup: Signup, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(NotFound, match=f"user {bob.identity.user_id} is not a member"):
        await organizations.change_role(ann.identity, user_id=bob.identity.user_id, role="viewer")
    with pytest.raises(NotFound):
        await organizations.remove_member(ann.identity, bob.identity.user_id)
