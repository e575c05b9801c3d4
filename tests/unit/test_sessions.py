"""Session checks of services other than auth: auth's answer is kept for at most 30 s."""

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

    async def CheckSession(
        self, request: auth_pb2.CheckSessionRequest, **options: object
    ) -> auth_pb2.CheckSessionResponse:
        self.calls += 1
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
