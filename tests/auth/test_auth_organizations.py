"""Organizations and members: who may do what, and the last owner stays."""

from __future__ import annotations

import pytest

from marketsync.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from marketsync.identity import Identity
from services.auth.organizations import Organizations

from .conftest import SignedUp, Signup

pytestmark = pytest.mark.anyio


async def join(
    organizations: Organizations, owner: SignedUp, user: SignedUp, role: str
) -> Identity:
    """Add the user to the owner's organization; return the user's identity there."""
    await organizations.add_member(owner.identity, email=user.email, role=role)
    return Identity(user.identity.user_id, owner.identity.organization_id, role, 0)


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
    signup: Signup, organizations: Organizations
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    await join(organizations, ann, bob, "viewer")
    members = await organizations.list_members(ann.identity)
    assert [(m.email, m.role) for m in members] == [(ann.email, "owner"), (bob.email, "viewer")]
    assert [m.email for m in await organizations.list_members(cat.identity)] == [cat.email]


async def test_adding_members(signup: Signup, organizations: Organizations) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    added = await organizations.add_member(ann.identity, email=bob.email.upper(), role="admin")
    assert (added.user_id, added.email, added.role) == (bob.identity.user_id, bob.email, "admin")
    with pytest.raises(AlreadyExists, match="already a member"):
        await organizations.add_member(ann.identity, email=bob.email, role="viewer")
    with pytest.raises(NotFound, match="no account uses"):
        await organizations.add_member(ann.identity, email="ghost@example.com", role="viewer")
    with pytest.raises(InvalidArgument, match="role: 'boss' is not one of owner, admin"):
        await organizations.add_member(ann.identity, email=cat.email, role="boss")


async def test_admins_manage_members_but_not_owners(
    signup: Signup, organizations: Organizations
) -> None:
    ann, bob, cat, dan = [await signup(n) for n in ("ann", "bob", "cat", "dan")]
    bob_admin = await join(organizations, ann, bob, "admin")
    await join(organizations, ann, cat, "member")
    await organizations.add_member(bob_admin, email=dan.email, role="viewer")
    await organizations.change_role(bob_admin, user_id=dan.identity.user_id, role="member")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.change_role(bob_admin, user_id=cat.identity.user_id, role="owner")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.change_role(bob_admin, user_id=ann.identity.user_id, role="admin")
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.remove_member(bob_admin, ann.identity.user_id)
    with pytest.raises(PermissionDenied, match="only owners"):
        await organizations.add_member(bob_admin, email="x" + ann.email, role="owner")
    await organizations.remove_member(bob_admin, dan.identity.user_id)
    emails = [m.email for m in await organizations.list_members(ann.identity)]
    assert emails == [ann.email, bob.email, cat.email]


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_members_and_viewers_cannot_manage(
    signup: Signup, organizations: Organizations, role: str
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    weak = await join(organizations, ann, bob, role)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await organizations.add_member(weak, email=cat.email, role="viewer")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await organizations.change_role(weak, user_id=bob.identity.user_id, role="admin")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await organizations.remove_member(weak, ann.identity.user_id)


async def test_role_from_the_member_row_beats_the_token(
    signup: Signup, organizations: Organizations
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    bob_claims_owner = Identity(bob.identity.user_id, ann.identity.organization_id, "owner", 0)
    await join(organizations, ann, bob, "viewer")
    with pytest.raises(PermissionDenied):
        await organizations.add_member(bob_claims_owner, email=cat.email, role="viewer")


async def test_the_last_owner_stays(signup: Signup, organizations: Organizations) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(FailedPrecondition, match=r"last owner .* cannot be demoted"):
        await organizations.change_role(ann.identity, user_id=ann.identity.user_id, role="admin")
    with pytest.raises(FailedPrecondition, match=r"last owner .* cannot be removed"):
        await organizations.remove_member(ann.identity, ann.identity.user_id)
    bob_owner = await join(organizations, ann, bob, "owner")
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
