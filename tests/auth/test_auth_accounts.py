"""Register, login (with throttling), logout, me, switch organization, sessions, session check."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from marketsync.identity import utcnow, verify_user_token
from services.auth.accounts import WRONG_CREDENTIALS, Accounts
from services.auth.organizations import Organizations

from .conftest import TOKEN_SECRET, Signup

pytestmark = pytest.mark.anyio


async def test_register_makes_the_user_owner_of_a_new_organization(signup: Signup) -> None:
    ann = await signup("ann")
    registration = ann.registration
    assert registration.user.email == ann.email
    assert registration.organization.name == "ann Inc"
    assert ann.identity.user_id == registration.user.id
    assert ann.identity.organization_id == registration.organization.id
    assert ann.identity.role == "owner"
    assert registration.expires_at - utcnow() > timedelta(hours=23)


async def test_register_refuses_a_taken_email_in_any_case(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    with pytest.raises(AlreadyExists, match="email: an account with"):
        await accounts.register(
            email=ann.email.upper(), password="another password", name="A", organization_name="B"
        )


@pytest.mark.parametrize(
    ("email", "password", "name", "organization_name", "field"),
    [
        ("not-an-email", "long enough", "Ann", "Ann Inc", "email"),
        ("ok@example.com", "short", "Ann", "Ann Inc", "password"),
        ("ok@example.com", "long enough", " ", "Ann Inc", "name"),
        ("ok@example.com", "long enough", "Ann", "", "organization_name"),
    ],
)
async def test_register_names_the_invalid_field(
    accounts: Accounts, email: str, password: str, name: str, organization_name: str, field: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field}: "):
        await accounts.register(
            email=email, password=password, name=name, organization_name=organization_name
        )


async def test_login_defaults_to_the_first_organization(
    signup: Signup, accounts: Accounts, organizations: Organizations
) -> None:
    ann = await signup("ann")
    second = await organizations.create(ann.identity, "Second Org")
    result = await accounts.login(email=f"  {ann.email.upper()} ", password=ann.password)
    assert result.organization_id == ann.identity.organization_id
    assert [(m.organization_id, m.role) for m in result.organizations] == [
        (ann.identity.organization_id, "owner"),
        (second.id, "owner"),
    ]
    chosen = await accounts.login(email=ann.email, password=ann.password, organization_id=second.id)
    assert verify_user_token(TOKEN_SECRET, chosen.token).organization_id == second.id


async def test_login_into_a_foreign_organization_is_denied(
    signup: Signup, accounts: Accounts
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(PermissionDenied, match="not a member of organization"):
        await accounts.login(
            email=ann.email, password=ann.password, organization_id=bob.identity.organization_id
        )


async def test_wrong_email_and_wrong_password_get_the_same_answer(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    with pytest.raises(Unauthenticated) as wrong_password:
        await accounts.login(email=ann.email, password="wrong password")
    with pytest.raises(Unauthenticated) as wrong_email:
        await accounts.login(email="nobody-" + ann.email, password=ann.password)
    assert wrong_password.value.message == wrong_email.value.message == WRONG_CREDENTIALS


async def test_sixth_attempt_is_refused_until_the_window_passes(
    signup: Signup, accounts: Accounts, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password")
    with pytest.raises(ResourceExhausted, match="try again in 15 minutes"):
        await accounts.login(email=ann.email, password=ann.password)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE login_failures SET window_started_at = now() - interval '16 minutes'"
            " WHERE email = %s",
            (ann.email,),
        )
    assert (await accounts.login(email=ann.email, password=ann.password)).user.email == ann.email


async def test_success_resets_the_failure_count(signup: Signup, accounts: Accounts) -> None:
    ann = await signup("ann")
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password")
    await accounts.login(email=ann.email, password=ann.password)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password")


async def test_unknown_emails_are_throttled_too(accounts: Accounts) -> None:
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email="ghost@example.com", password="whatever pw")
    with pytest.raises(ResourceExhausted):
        await accounts.login(email="GHOST@example.com", password="whatever pw")


async def test_parallel_burst_gets_at_most_five_passwords_checked(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    outcomes = await asyncio.gather(
        *(accounts.login(email=ann.email, password=f"wrong {n}") for n in range(20)),
        return_exceptions=True,
    )
    kinds = [type(outcome) for outcome in outcomes]
    assert kinds.count(Unauthenticated) == 5
    assert kinds.count(ResourceExhausted) == 15


async def test_logout_ends_the_session(signup: Signup, accounts: Accounts) -> None:
    ann = await signup("ann")
    assert await accounts.check_session(ann.identity) == ann.identity
    await accounts.logout(ann.identity)
    with pytest.raises(Unauthenticated, match="the session has ended"):
        await accounts.check_session(ann.identity)


async def test_session_check_takes_the_role_from_the_member_row(
    signup: Signup, accounts: Accounts, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await organizations.add_member(ann.identity, email=bob.email, role="admin")
    login = await accounts.login(
        email=bob.email, password=bob.password, organization_id=ann.identity.organization_id
    )
    bob_in_ann_org = verify_user_token(TOKEN_SECRET, login.token)
    assert bob_in_ann_org.role == "admin"
    await organizations.change_role(ann.identity, user_id=bob.identity.user_id, role="viewer")
    assert (await accounts.check_session(bob_in_ann_org)).role == "viewer"
    await organizations.remove_member(ann.identity, bob.identity.user_id)
    with pytest.raises(Unauthenticated):
        await accounts.check_session(bob_in_ann_org)


async def test_session_check_refuses_a_forged_pairing(signup: Signup, accounts: Accounts) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(Unauthenticated):
        await accounts.check_session(
            dataclasses.replace(ann.identity, organization_id=bob.identity.organization_id)
        )
    with pytest.raises(Unauthenticated):
        await accounts.check_session(
            dataclasses.replace(ann.identity, session_id=bob.identity.session_id)
        )


async def test_me_lists_the_user_and_organizations(
    signup: Signup, accounts: Accounts, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await organizations.add_member(bob.identity, email=ann.email, role="viewer")
    me = await accounts.me(ann.identity)
    assert me.user == ann.registration.user
    assert me.organization_id == ann.identity.organization_id
    assert me.role == "owner"
    assert [(m.name, m.role) for m in me.organizations] == [
        ("ann Inc", "owner"),
        ("bob Inc", "viewer"),
    ]


async def test_switch_organization_needs_membership(
    signup: Signup, accounts: Accounts, organizations: Organizations
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(PermissionDenied):
        await accounts.switch_organization(ann.identity, bob.identity.organization_id)
    await organizations.add_member(bob.identity, email=ann.email, role="member")
    switched = await accounts.switch_organization(ann.identity, bob.identity.organization_id)
    identity = verify_user_token(TOKEN_SECRET, switched.token)
    assert (identity.organization_id, identity.role) == (bob.identity.organization_id, "member")
    assert identity.session_id != ann.identity.session_id
    assert await accounts.check_session(identity) == identity


async def test_sessions_are_listed_and_revoked_by_their_owner_only(
    signup: Signup, accounts: Accounts
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    second = await accounts.login(email=ann.email, password=ann.password)
    second_id = verify_user_token(TOKEN_SECRET, second.token).session_id
    sessions = await accounts.list_sessions(ann.identity)
    assert [(s.id, s.current) for s in sessions] == [
        (second_id, False),
        (ann.identity.session_id, True),
    ]
    with pytest.raises(NotFound, match="you have no session"):
        await accounts.revoke_session(bob.identity, second_id)
    await accounts.revoke_session(ann.identity, second_id)
    assert [s.id for s in await accounts.list_sessions(ann.identity)] == [ann.identity.session_id]


async def test_purge_deletes_long_ended_sessions_and_stale_counters_only(
    pool: AsyncConnectionPool, accounts: Accounts, signup: Signup
) -> None:
    ended, live = await signup("ended"), await signup("live")
    await accounts.logout(ended.identity)
    with pytest.raises(Unauthenticated):
        await accounts.login(email=live.email, password="wrong password")
    stale = f"stale-{uuid.uuid4().hex[:8]}@example.com"
    with pytest.raises(Unauthenticated):
        await accounts.login(email=stale, password="wrong password")
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE id = %s",
            (ended.identity.session_id,),
        )
        await conn.execute(
            "UPDATE login_failures SET window_started_at = now() - interval '16 minutes'"
            " WHERE email = %s",
            (stale,),
        )

    await accounts.purge_ended()

    async with pool.connection() as conn:
        sessions = await conn.execute(
            "SELECT id FROM sessions WHERE id = ANY(%s)",
            ([ended.identity.session_id, live.identity.session_id],),
        )
        assert [row[0] for row in await sessions.fetchall()] == [live.identity.session_id]
        counters = await conn.execute(
            "SELECT email FROM login_failures WHERE email = ANY(%s)", ([stale, live.email],)
        )
        assert [row[0] for row in await counters.fetchall()] == [live.email]
    assert await accounts.check_session(live.identity)
