"""Invitations: no enumeration, consent before membership, expiry, revocation, who may do what."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from marketsync.identity import Identity, utcnow, verify_user_token
from services.auth.accounts import Accounts
from services.auth.invitations import Invitations
from services.auth.organizations import Organizations

from .conftest import PASSWORD, TOKEN_SECRET, Join, Signup

pytestmark = pytest.mark.anyio


async def _expire(pool: AsyncConnectionPool, invitation_id: int) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE invitations SET created_at = now() - interval '8 days',"
            " expires_at = now() - interval '1 day' WHERE id = %s",
            (invitation_id,),
        )


async def test_inviting_answers_the_same_for_known_and_unknown_emails(
    signup: Signup, invitations: Invitations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    ghost = f"ghost-{uuid.uuid4().hex[:10]}@example.com"
    known = await invitations.invite(ann.identity, email=bob.email.upper(), role="member")
    unknown = await invitations.invite(ann.identity, email=ghost.upper(), role="member")
    assert (known.email, known.role) == (bob.email, "member")
    assert (unknown.email, unknown.role) == (ghost, "member")
    assert type(known) is type(unknown)
    for invitation in (known, unknown):
        assert timedelta(days=7) - (invitation.expires_at - utcnow()) < timedelta(minutes=1)
    assert {i.email for i in await invitations.list_pending(ann.identity)} == {bob.email, ghost}


async def test_membership_starts_only_when_the_invited_user_accepts(
    signup: Signup, invitations: Invitations, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    invitation = await invitations.invite(ann.identity, email=bob.email, role="admin")
    assert bob.email not in {m.email for m in await organizations.list_members(ann.identity)}
    [received] = await invitations.received(bob.identity)
    assert (received.id, received.organization_id, received.organization_name, received.role) == (
        invitation.id,
        ann.identity.organization_id,
        "ann Inc",
        "admin",
    )
    member = await invitations.accept(bob.identity, invitation.id)
    assert (member.user_id, member.email, member.role) == (bob.identity.user_id, bob.email, "admin")
    members = {m.email: m.role for m in await organizations.list_members(ann.identity)}
    assert members[bob.email] == "admin"
    assert await invitations.received(bob.identity) == ()
    assert await invitations.list_pending(ann.identity) == ()
    with pytest.raises(NotFound, match="invitation_id: you have no pending invitation"):
        await invitations.accept(bob.identity, invitation.id)


async def test_an_email_registered_later_can_accept(
    invitations: Invitations, accounts: Accounts, signup: Signup
) -> None:
    ann = await signup("ann")
    email = f"later-{uuid.uuid4().hex[:10]}@example.com"
    invitation = await invitations.invite(ann.identity, email=email, role="viewer")
    registration = await accounts.register(
        email=email.upper(), password=PASSWORD, name="Later", organization_name="Later Co"
    )
    later = verify_user_token(TOKEN_SECRET, registration.token)
    assert [i.id for i in await invitations.received(later)] == [invitation.id]
    assert (await invitations.accept(later, invitation.id)).role == "viewer"


async def test_someone_elses_invitation_is_not_found(
    signup: Signup, invitations: Invitations
) -> None:
    ann, bob, eve = await signup("ann"), await signup("bob"), await signup("eve")
    invitation = await invitations.invite(ann.identity, email=bob.email, role="admin")
    assert await invitations.received(eve.identity) == ()
    with pytest.raises(NotFound, match="invitation_id"):
        await invitations.accept(eve.identity, invitation.id)
    with pytest.raises(NotFound, match="invitation_id"):
        await invitations.decline(eve.identity, invitation.id)
    # Not even the organization's own owner can accept in bob's place.
    with pytest.raises(NotFound):
        await invitations.accept(ann.identity, invitation.id)
    assert [i.id for i in await invitations.received(bob.identity)] == [invitation.id]


async def test_an_expired_invitation_can_no_longer_be_seen_or_answered(
    signup: Signup, invitations: Invitations, pool: AsyncConnectionPool
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    invitation = await invitations.invite(ann.identity, email=bob.email, role="member")
    await _expire(pool, invitation.id)
    assert await invitations.received(bob.identity) == ()
    assert await invitations.list_pending(ann.identity) == ()
    with pytest.raises(NotFound):
        await invitations.accept(bob.identity, invitation.id)
    with pytest.raises(NotFound):
        await invitations.decline(bob.identity, invitation.id)
    with pytest.raises(NotFound):
        await invitations.revoke(ann.identity, invitation.id)
    # Inviting again brings it back, for another seven days.
    renewed = await invitations.invite(ann.identity, email=bob.email, role="viewer")
    assert renewed.expires_at - utcnow() > timedelta(days=6)
    assert (await invitations.accept(bob.identity, renewed.id)).role == "viewer"


async def test_inviting_again_renews_the_pending_invitation(
    signup: Signup, invitations: Invitations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    first = await invitations.invite(ann.identity, email=bob.email, role="viewer")
    second = await invitations.invite(ann.identity, email=bob.email, role="member")
    assert second.id == first.id and second.role == "member"
    assert [(i.id, i.role) for i in await invitations.received(bob.identity)] == [
        (first.id, "member")
    ]


async def test_a_revoked_invitation_cannot_be_accepted(
    signup: Signup, invitations: Invitations
) -> None:
    ann, bob, cat = await signup("ann"), await signup("bob"), await signup("cat")
    invitation = await invitations.invite(ann.identity, email=bob.email, role="member")
    with pytest.raises(NotFound, match="this organization has no pending invitation"):
        await invitations.revoke(cat.identity, invitation.id)  # another organization's admin
    await invitations.revoke(ann.identity, invitation.id)
    assert await invitations.list_pending(ann.identity) == ()
    assert await invitations.received(bob.identity) == ()
    with pytest.raises(NotFound):
        await invitations.accept(bob.identity, invitation.id)
    with pytest.raises(NotFound):
        await invitations.revoke(ann.identity, invitation.id)


async def test_a_declined_invitation_is_gone_and_the_email_can_be_invited_again(
    signup: Signup, invitations: Invitations, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    invitation = await invitations.invite(ann.identity, email=bob.email, role="member")
    await invitations.decline(bob.identity, invitation.id)
    assert await invitations.received(bob.identity) == ()
    with pytest.raises(NotFound):
        await invitations.accept(bob.identity, invitation.id)
    with pytest.raises(NotFound):
        await invitations.decline(bob.identity, invitation.id)
    assert bob.email not in {m.email for m in await organizations.list_members(ann.identity)}
    again = await invitations.invite(ann.identity, email=bob.email, role="member")
    assert again.id != invitation.id


async def test_accepting_and_revoking_at_once_one_wins(
    signup: Signup, invitations: Invitations, organizations: Organizations
) -> None:
    for _ in range(5):
        ann, bob = await signup("ann"), await signup("bob")
        invitation = await invitations.invite(ann.identity, email=bob.email, role="member")
        accepted, revoked = await asyncio.gather(
            invitations.accept(bob.identity, invitation.id),
            invitations.revoke(ann.identity, invitation.id),
            return_exceptions=True,
        )
        assert isinstance(accepted, NotFound) != isinstance(revoked, NotFound)
        members = {m.email for m in await organizations.list_members(ann.identity)}
        assert (bob.email in members) == (not isinstance(accepted, NotFound))


async def test_inviting_a_member_is_a_conflict_and_bad_fields_are_named(
    signup: Signup, invitations: Invitations, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await join(ann.identity, bob, "viewer")
    with pytest.raises(AlreadyExists, match=r"email: .* already a member"):
        await invitations.invite(ann.identity, email=bob.email.upper(), role="admin")
    with pytest.raises(AlreadyExists):
        await invitations.invite(ann.identity, email=ann.email, role="admin")
    with pytest.raises(InvalidArgument, match="role: 'boss' is not one of owner, admin"):
        await invitations.invite(ann.identity, email="x@example.com", role="boss")
    with pytest.raises(InvalidArgument, match=r"^email: "):
        await invitations.invite(ann.identity, email="not-an-email", role="viewer")


async def test_only_admins_invite_list_and_revoke_and_only_owners_deal_in_owners(
    signup: Signup, invitations: Invitations, join: Join
) -> None:
    ann, bob, cat, dan = [await signup(n) for n in ("ann", "bob", "cat", "dan")]
    bob_admin = await join(ann.identity, bob, "admin")
    cat_member = await join(ann.identity, cat, "member")
    for weak in (cat_member, dataclasses.replace(cat_member, role="viewer")):
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            await invitations.invite(weak, email=dan.email, role="viewer")
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            await invitations.list_pending(weak)
    with pytest.raises(PermissionDenied, match="only owners"):
        await invitations.invite(bob_admin, email=dan.email, role="owner")
    to_owner = await invitations.invite(ann.identity, email=dan.email, role="owner")
    with pytest.raises(PermissionDenied, match="only owners"):
        await invitations.revoke(bob_admin, to_owner.id)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        await invitations.revoke(cat_member, to_owner.id)
    to_viewer = await invitations.invite(bob_admin, email=f"v-{dan.email}", role="viewer")
    assert {i.id for i in await invitations.list_pending(bob_admin)} == {to_owner.id, to_viewer.id}
    await invitations.revoke(bob_admin, to_viewer.id)
    assert (await invitations.accept(dan.identity, to_owner.id)).role == "owner"


async def test_the_invitee_accepts_with_a_token_of_any_of_their_organizations(
    signup: Signup, invitations: Invitations, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    elsewhere = await organizations.create(bob.identity, "Bob Side")
    bob_elsewhere = Identity(bob.identity.user_id, elsewhere.id, "owner", bob.identity.session_id)
    invitation = await invitations.invite(ann.identity, email=bob.email, role="member")
    assert (await invitations.accept(bob_elsewhere, invitation.id)).role == "member"
