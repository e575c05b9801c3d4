"""Session checks for services other than auth: ask auth, remember the answer for 30 s.

A revoked session or a changed role therefore reaches every service within 30 s, as the
contract promises, while a busy service asks auth about each session at most twice a minute.
"""

from __future__ import annotations

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
        auth: auth_pb2_grpc.AuthInternalServiceStub,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._clock = clock
        # identity from the token -> (checked at, role from the member row or None if refused)
        self._answers: dict[Identity, tuple[float, str | None]] = {}

    async def __call__(self, identity: Identity) -> Identity:
        now = self._clock()
        cached = self._answers.get(identity)
        if cached is None or now - cached[0] >= CACHE_SECONDS:
            cached = (now, await self._ask_auth(identity))
            self._remember(identity, cached)
        role = cached[1]
        if role is None:
            raise Unauthenticated("the session has ended; log in again")
        return replace(identity, role=role)

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
