"""Register, login (with throttling), logout, me, switch organization, sessions, session check."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from psycopg import sql
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
from services.auth.logins import LoginChecks
from services.auth.organizations import Organizations
from services.auth.passwords import PasswordHasher
from services.auth.throttle import ClientRateLimit

from .conftest import TOKEN_SECRET, Join, Signup

pytestmark = pytest.mark.anyio
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"
ADDRESS_LOCKED = "too many failed logins for this email from your address; try again in 15 minutes"
EMAIL_LOCKED = "too many failed logins for this email; try again in 15 minutes"


async def pass_the_window(pool: AsyncConnectionPool, email: str) -> None:
    """Age the email's failed-login windows, per address and overall, past 15 minutes."""
    async with pool.connection() as conn:
        for table in ("login_failures", "login_client_failures"):
            await conn.execute(
                sql.SQL(
                    "UPDATE {} SET window_started_at = now() - interval '16 minutes'"
                    " WHERE email = %s"
                ).format(sql.Identifier(table)),
                (email,),
            )


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
    await pass_the_window(pool, ann.email)
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


class CountingHasher(PasswordHasher):
    """Checks passwords slowly enough to overlap, counting how many run at once."""

    def __init__(self) -> None:
        super().__init__(rounds=4)
        self.running = 0
        self.most_at_once = 0
        self.checked = 0
        self.started = asyncio.Event()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.running += 1
        self.checked += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.started.set()
        try:
            await asyncio.sleep(0.05)
            return await super().verify(password, password_hash)
        finally:
            self.running -= 1


async def test_parallel_correct_logins_all_succeed(signup: Signup, accounts: Accounts) -> None:
    ann = await signup("ann")
    outcomes = await asyncio.gather(
        *(accounts.login(email=ann.email, password=ann.password) for _ in range(10)),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == ["LoginResult"] * 10


async def test_failures_still_lock_after_parallel_correct_logins(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    await asyncio.gather(
        *(accounts.login(email=ann.email, password=ann.password) for _ in range(10))
    )
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password")
    with pytest.raises(ResourceExhausted, match="too many failed logins"):
        await accounts.login(email=ann.email, password=ann.password)


async def test_at_most_five_passwords_of_an_email_are_checked_at_once_across_replicas(
    signup: Signup, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    hasher = CountingHasher()
    # Two replicas: each has its own per-email semaphore; PostgreSQL holds the shared cap.
    replicas = [Accounts(pool, token_secret=TOKEN_SECRET, passwords=hasher) for _ in range(2)]
    outcomes = await asyncio.gather(
        *(replicas[n % 2].login(email=ann.email, password=ann.password) for n in range(16)),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == ["LoginResult"] * 16
    assert hasher.most_at_once == 5


async def test_failures_and_checks_under_way_share_the_limit(
    signup: Signup, pool: AsyncConnectionPool
) -> None:
    """With four failures, a burst of wrong passwords gets one more checked, not five."""
    ann = await signup("ann")
    hasher = CountingHasher()
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=hasher)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password")
    outcomes = await asyncio.gather(
        *(accounts.login(email=ann.email, password=f"wrong {n}") for n in range(8)),
        return_exceptions=True,
    )
    kinds = [type(outcome) for outcome in outcomes]
    assert (kinds.count(Unauthenticated), kinds.count(ResourceExhausted)) == (1, 7)
    assert hasher.checked == 5


async def test_a_login_waits_for_a_slot_then_gives_up(
    signup: Signup, pool: AsyncConnectionPool, passwords: PasswordHasher
) -> None:
    ann = await signup("ann")
    checks = LoginChecks(pool, wait_seconds=0.3)
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=passwords, login_checks=checks)
    async with pool.connection() as conn:
        # Five checks under way on another replica.
        await conn.execute(
            "INSERT INTO login_checks (email) SELECT %s FROM generate_series(1, 5)", (ann.email,)
        )
    with pytest.raises(ResourceExhausted, match="under way at once; try again in a few seconds"):
        await accounts.login(email=ann.email, password=ann.password)
    async with pool.connection() as conn:
        # Their replica died a while ago: the checks no longer count.
        await conn.execute(
            "UPDATE login_checks SET started_at = now() - interval '2 minutes' WHERE email = %s",
            (ann.email,),
        )
    assert (await accounts.login(email=ann.email, password=ann.password)).user.email == ann.email


async def test_a_cancelled_login_frees_its_slot_without_counting_a_failure(
    signup: Signup, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    hasher = CountingHasher()
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=hasher)
    login = asyncio.create_task(accounts.login(email=ann.email, password="wrong password"))
    await hasher.started.wait()
    login.cancel()
    with pytest.raises(asyncio.CancelledError):
        await login
    async with pool.connection() as conn:
        left = await conn.execute(
            "SELECT (SELECT count(*) FROM login_checks WHERE email = %(e)s),"
            " (SELECT count(*) FROM login_failures WHERE email = %(e)s),"
            " (SELECT count(*) FROM login_client_failures WHERE email = %(e)s)",
            {"e": ann.email},
        )
        assert await left.fetchone() == (0, 0, 0)


async def test_the_client_limit_counts_logins_and_registrations_together(
    pool: AsyncConnectionPool, passwords: PasswordHasher, signup: Signup
) -> None:
    ann = await signup("ann")
    limit = ClientRateLimit(burst=3, per_minute=1)
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=passwords, client_limit=limit)
    await accounts.login(email=ann.email, password=ann.password, client="198.51.100.7")
    with pytest.raises(Unauthenticated):
        await accounts.login(email=ann.email, password="wrong password", client="198.51.100.7")
    with pytest.raises(InvalidArgument):
        await accounts.register(
            email="bad", password="long enough", name="N", organization_name="O",
            client="198.51.100.7",
        )  # fmt: skip
    with pytest.raises(ResourceExhausted, match="from your address; try again in 60 seconds"):
        await accounts.login(email=ann.email, password=ann.password, client="198.51.100.7")
    # Neither another address nor the email itself is held back.
    await accounts.login(email=ann.email, password=ann.password, client="198.51.100.8")
    await accounts.login(email=ann.email, password=ann.password)


async def test_an_address_locked_out_of_an_email_leaves_the_owner_elsewhere_unaffected(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password", client=ATTACKER)
    with pytest.raises(ResourceExhausted) as locked:
        await accounts.login(email=ann.email, password=ann.password, client=ATTACKER)
    assert locked.value.message == ADDRESS_LOCKED
    owner = await accounts.login(email=ann.email, password=ann.password, client=OWNER)
    assert owner.user.email == ann.email
    # The owner's login forgives nobody else: the attacker's address stays locked out.
    with pytest.raises(ResourceExhausted, match="from your address"):
        await accounts.login(email=ann.email, password=ann.password, client=ATTACKER)
    # Nor is the attacker's address locked out of any other email.
    bob = await signup("bob")
    await accounts.login(email=bob.email, password=bob.password, client=ATTACKER)


async def test_a_right_password_starts_over_only_its_own_addresss_count(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    for client in (ATTACKER, OWNER):
        for _ in range(4):
            with pytest.raises(Unauthenticated):
                await accounts.login(email=ann.email, password="wrong password", client=client)
    await accounts.login(email=ann.email, password=ann.password, client=OWNER)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.login(email=ann.email, password="wrong password", client=OWNER)
    with pytest.raises(Unauthenticated):
        await accounts.login(email=ann.email, password="wrong password", client=ATTACKER)
    with pytest.raises(ResourceExhausted, match="from your address"):
        await accounts.login(email=ann.email, password=ann.password, client=ATTACKER)


async def test_unknown_emails_lock_out_an_address_with_the_same_answer(
    signup: Signup, accounts: Accounts
) -> None:
    ann = await signup("ann")
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    answers = []
    for email in (ann.email, ghost):
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                await accounts.login(email=email, password="wrong password", client=ATTACKER)
        with pytest.raises(ResourceExhausted) as locked:
            await accounts.login(email=email, password="wrong password", client=ATTACKER)
        answers.append(locked.value.message)
        with pytest.raises(Unauthenticated):
            await accounts.login(email=email, password="wrong password", client=OWNER)
    assert answers == [ADDRESS_LOCKED] * 2


async def test_the_email_cap_locks_out_every_address_once_failures_from_many_add_up(
    signup: Signup, pool: AsyncConnectionPool, passwords: PasswordHasher
) -> None:
    checks = LoginChecks(pool, email_limit=8)
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=passwords, login_checks=checks)
    ann = await signup("ann")
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    answers = []
    for email in (ann.email, ghost):
        # Four addresses, none reaching its own limit of five.
        for n in range(8):
            with pytest.raises(Unauthenticated):
                await accounts.login(
                    email=email, password="wrong password", client=f"192.0.2.{n % 4}"
                )
        for client in (OWNER, "192.0.2.0", "2001:db8::/64"):
            with pytest.raises(ResourceExhausted) as locked:
                await accounts.login(email=email, password=ann.password, client=client)
            answers.append(locked.value.message)
    assert answers == [EMAIL_LOCKED] * 6
    bob = await signup("bob")
    await accounts.login(email=bob.email, password=bob.password, client=OWNER)
    await pass_the_window(pool, ann.email)
    assert (await accounts.login(email=ann.email, password=ann.password, client=OWNER)).user


async def test_a_burst_spread_over_many_addresses_gets_no_more_checked_than_the_email_cap(
    signup: Signup, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    hasher = CountingHasher()
    checks = LoginChecks(pool, email_limit=7)
    accounts = Accounts(pool, token_secret=TOKEN_SECRET, passwords=hasher, login_checks=checks)
    outcomes = await asyncio.gather(
        *(
            accounts.login(email=ann.email, password=f"wrong {n}", client=f"192.0.2.{n}")
            for n in range(30)
        ),
        return_exceptions=True,
    )
    kinds = [type(outcome) for outcome in outcomes]
    assert (kinds.count(Unauthenticated), kinds.count(ResourceExhausted)) == (7, 23)
    assert hasher.checked == 7
    assert hasher.most_at_once <= 5


async def test_the_email_cap_cannot_be_below_the_per_address_limit(
    pool: AsyncConnectionPool,
) -> None:
    with pytest.raises(ValueError, match="limit <= email_limit"):
        LoginChecks(pool, limit=5, email_limit=4)


async def test_logout_ends_the_session(signup: Signup, accounts: Accounts) -> None:
    ann = await signup("ann")
    assert await accounts.check_session(ann.identity) == ann.identity
    await accounts.logout(ann.identity)
    with pytest.raises(Unauthenticated, match="the session has ended"):
        await accounts.check_session(ann.identity)


async def test_session_check_takes_the_role_from_the_member_row(
    signup: Signup, accounts: Accounts, organizations: Organizations, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await join(ann.identity, bob, "admin")
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
    signup: Signup, accounts: Accounts, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await join(bob.identity, ann, "viewer")
    me = await accounts.me(ann.identity)
    assert me.user == ann.registration.user
    assert me.organization_id == ann.identity.organization_id
    assert me.role == "owner"
    assert [(m.name, m.role) for m in me.organizations] == [
        ("ann Inc", "owner"),
        ("bob Inc", "viewer"),
    ]


async def test_me_refuses_a_removed_member_and_a_user_that_is_gone(
    signup: Signup, accounts: Accounts, organizations: Organizations, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    bob_in_ann_org = await join(ann.identity, bob, "viewer")
    assert (await accounts.me(bob_in_ann_org)).role == "viewer"
    await organizations.remove_member(ann.identity, bob.identity.user_id)
    with pytest.raises(Unauthenticated):
        await accounts.me(bob_in_ann_org)
    with pytest.raises(Unauthenticated):
        await accounts.me(dataclasses.replace(ann.identity, user_id=2**31 - 1))


async def test_switch_organization_needs_membership(
    signup: Signup, accounts: Accounts, join: Join
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    with pytest.raises(PermissionDenied):
        await accounts.switch_organization(ann.identity, bob.identity.organization_id)
    await join(bob.identity, ann, "member")
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
    await pass_the_window(pool, stale)

    await accounts.purge_ended()

    async with pool.connection() as conn:
        sessions = await conn.execute(
            "SELECT id FROM sessions WHERE id = ANY(%s)",
            ([ended.identity.session_id, live.identity.session_id],),
        )
        assert [row[0] for row in await sessions.fetchall()] == [live.identity.session_id]
        for table in ("login_failures", "login_client_failures"):
            counters = await conn.execute(
                sql.SQL("SELECT email FROM {} WHERE email = ANY(%s)").format(sql.Identifier(table)),
                ([stale, live.email],),
            )
            assert [row[0] for row in await counters.fetchall()] == [live.email], table
    assert await accounts.check_session(live.identity)
