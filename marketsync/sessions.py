"""Session checks for services other than auth: ask auth, remember the answer for 30 s.

A revoked session or a changed role therefore reaches every service within 30 s, as the
contract promises, while a busy service asks auth about each session at most twice a minute.
Requests that find no answer while one is being asked wait for that one: a burst with a new
token costs auth one check, not one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import grpc
from grpc import aio

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.errors import Unauthenticated
from marketsync.identity import Identity

CACHE_SECONDS = 30.0
MAX_CACHED_SESSIONS = 50_000


class RemoteSessionChecker:
    def __init__(
        self,
        auth: auth_pb2_grpc.AuthInternalServiceAsyncStub,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._clock = clock
        # identity from the token -> (checked at, role from the member row or None if refused)
        self._answers: dict[Identity, tuple[float, str | None]] = {}
        # The questions to auth under way, which callers without an answer share.
        self._asking: dict[Identity, asyncio.Task[str | None]] = {}

    async def __call__(self, identity: Identity) -> Identity:
        cached = self._answers.get(identity)
        if cached is None or self._clock() - cached[0] >= CACHE_SECONDS:
            role = await self._shared_answer(identity)
        else:
            role = cached[1]
        if role is None:
            raise Unauthenticated("the session has ended; log in again")
        return replace(identity, role=role)

    async def _shared_answer(self, identity: Identity) -> str | None:
        question = self._asking.get(identity)
        if question is None:
            question = asyncio.create_task(self._ask_and_remember(identity))
            self._asking[identity] = question
            question.add_done_callback(lambda done: self._forget_question(identity, done))
        # A caller that is cancelled (its client went away) stops waiting; the question goes
        # on for the others.
        return await asyncio.shield(question)

    def _forget_question(self, identity: Identity, question: asyncio.Task[str | None]) -> None:
        del self._asking[identity]
        # A failure is never remembered, so the next caller asks again. When every waiter was
        # cancelled nobody reads it: mark it read, or asyncio logs it as lost.
        if not question.cancelled():
            question.exception()

    async def _ask_and_remember(self, identity: Identity) -> str | None:
        asked_at = self._clock()
        role = await self._ask_auth(identity)
        self._remember(identity, (asked_at, role))
        return role

    async def _ask_auth(self, identity: Identity) -> str | None:
        request = auth_pb2.CheckSessionRequest(
            session_id=identity.session_id,
            user_id=identity.user_id,
            organization_id=identity.organization_id,
        )
        try:
            answer = await self._auth.CheckSession(request, timeout=5)
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return None
            raise
        return answer.role

    def _remember(self, identity: Identity, answer: tuple[float, str | None]) -> None:
        if len(self._answers) >= MAX_CACHED_SESSIONS:
            cutoff = answer[0] - CACHE_SECONDS
            self._answers = {k: v for k, v in self._answers.items() if v[0] > cutoff}
        self._answers[identity] = answer
