"""Session checks of services other than auth: auth's answer is kept for at most 30 s, and
callers of one session share the question while it is open."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio

from marketsync.auth.v1 import auth_pb2
from marketsync.errors import Unauthenticated
from marketsync.identity import Identity
from marketsync.sessions import CACHE_SECONDS, RemoteSessionChecker


class FakeAuth:
    def __init__(self) -> None:
        self.calls = 0
        self.role: str | None = "member"
        self.failure: grpc.StatusCode | None = None
        # Set: answers at once. Cleared: every call waits until it is set again.
        self.answering = asyncio.Event()
        self.answering.set()

    async def CheckSession(
        self, request: auth_pb2.CheckSessionRequest, **options: object
    ) -> auth_pb2.CheckSessionResponse:
        self.calls += 1
        await self.answering.wait()
        if self.failure is not None:
            raise aio.AioRpcError(self.failure, aio.Metadata(), aio.Metadata(), "down")
        if self.role is None:
            raise aio.AioRpcError(
                grpc.StatusCode.UNAUTHENTICATED, aio.Metadata(), aio.Metadata(), "ended"
            )
        return auth_pb2.CheckSessionResponse(role=self.role)


def checker(auth: FakeAuth, clock: list[float]) -> RemoteSessionChecker:
    return RemoteSessionChecker(auth, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_the_member_row_role_wins_and_is_cached_for_at_most_30_seconds() -> None:
    async def scenario() -> None:
        auth, clock = FakeAuth(), [1000.0]
        check = checker(auth, clock)
        token_identity = Identity(1, 2, "owner", 3)
        assert (await check(token_identity)).role == "member"
        auth.role = "viewer"
        clock[0] += CACHE_SECONDS - 1
        assert (await check(token_identity)).role == "member"
        assert auth.calls == 1
        clock[0] += 1
        assert (await check(token_identity)).role == "viewer"
        auth.role = None
        clock[0] += CACHE_SECONDS
        with pytest.raises(Unauthenticated):
            await check(token_identity)

    asyncio.run(scenario())


async def _waiting(
    check: RemoteSessionChecker, identity: Identity, count: int
) -> list[asyncio.Task[Identity]]:
    """`count` checks of the identity, all waiting on auth's (held) answer."""
    callers = [asyncio.create_task(check(identity)) for _ in range(count)]
    await asyncio.sleep(0)
    return callers


def test_concurrent_checks_of_one_session_ask_auth_once() -> None:
    async def scenario() -> None:
        auth, clock = FakeAuth(), [1000.0]
        check = checker(auth, clock)
        auth.answering.clear()
        ann, bob = Identity(1, 2, "owner", 3), Identity(4, 5, "owner", 6)
        callers = await _waiting(check, ann, 32) + await _waiting(check, bob, 1)
        auth.answering.set()
        answers = await asyncio.gather(*callers)
        assert [identity.role for identity in answers] == ["member"] * 33
        assert [identity.user_id for identity in answers] == [1] * 32 + [4]
        assert auth.calls == 2  # one per session
        assert (await check(ann)).role == "member"
        assert auth.calls == 2

    asyncio.run(scenario())


def test_a_failed_check_fails_every_waiter_and_the_next_call_asks_again() -> None:
    async def scenario() -> None:
        auth, clock = FakeAuth(), [1000.0]
        check = checker(auth, clock)
        identity = Identity(1, 2, "owner", 3)
        auth.answering.clear()
        auth.failure = grpc.StatusCode.UNAVAILABLE
        callers = await _waiting(check, identity, 32)
        auth.answering.set()
        outcomes = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(outcome, aio.AioRpcError) for outcome in outcomes), outcomes
        assert auth.calls == 1
        auth.failure = None
        assert (await check(identity)).role == "member"
        assert auth.calls == 2

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_others_their_answer() -> None:
    async def scenario() -> None:
        auth, clock = FakeAuth(), [1000.0]
        check = checker(auth, clock)
        identity = Identity(1, 2, "owner", 3)
        auth.answering.clear()
        first, *others = await _waiting(check, identity, 3)
        first.cancel()
        await asyncio.sleep(0)
        auth.answering.set()
        assert [answer.role for answer in await asyncio.gather(*others)] == ["member"] * 2
        assert first.cancelled()
        assert auth.calls == 1

    asyncio.run(scenario())


def test_the_question_goes_on_when_its_only_caller_is_cancelled() -> None:
    async def scenario() -> None:
        auth, clock = FakeAuth(), [1000.0]
        check = checker(auth, clock)
        identity = Identity(1, 2, "owner", 3)
        auth.answering.clear()
        (only,) = await _waiting(check, identity, 1)
        only.cancel()
        await asyncio.sleep(0)
        auth.answering.set()
        # Joins the question still open, or reads its answer: either way auth is not asked again.
        assert (await check(identity)).role == "member"
        assert auth.calls == 1

    asyncio.run(scenario())
