"""Pacing and retrying marketplace calls.

Marketplaces limit each seller account per operation with token buckets; a sync that goes
faster is throttled. One `Pacer` per process holds a bucket per (account, operation), so every
sync of one account shares that account's allowance while other accounts never wait on it.
Failures that may pass (throttling, 5xx, dropped connections, answers without data) are retried
with exponential backoff and jitter, a bounded number of times. Every wait is awaited on the
event loop: a sync that waits holds no thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from marketsync.backoff import Backoff
from marketsync.marketplaces import AMAZON, WALMART
from services.sync.marketplaces.records import MarketplaceError
from services.sync.metrics import PACING_WAIT

T = TypeVar("T")


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


# The documented usage plans (requests per second, burst) per operation.
AMAZON_RATES: Mapping[str, Rate] = {
    "createReport": Rate(0.0167, 15),
    "getReport": Rate(2, 15),
    "getReportDocument": Rate(0.0167, 15),
    "downloadReportDocument": Rate(2, 15),
    "searchCatalogItems": Rate(2, 2),
    "getInventorySummaries": Rate(2, 2),
}
WALMART_RATES: Mapping[str, Rate] = {
    "getAllItems": Rate(4, 4),
    "getInventories": Rate(4, 4),
}
DEFAULT_RATES: Mapping[str, Rate] = {**AMAZON_RATES, **WALMART_RATES}
# A throttled or failing call is tried six times in all; each wait is at least half its
# ceiling, so a marketplace that just refused is never called straight back.
MARKETPLACE_BACKOFF = Backoff(base_seconds=1.0, cap_seconds=30.0, jitter=0.5, attempts=6)
MARKETPLACE_OF: Mapping[str, str] = {
    **dict.fromkeys(AMAZON_RATES, AMAZON),
    **dict.fromkeys(WALMART_RATES, WALMART),
}


class TokenBucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._updated = now

    def reserve(self, now: float) -> float:
        """Takes the next token and says how long to wait until it is there."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self._rate.burst), self._tokens + elapsed * self._rate.per_second)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate.per_second


class Pacer:
    """Token buckets per (account, operation); `clock` and `sleep` are injectable for tests.

    `sleep` is awaited for every pause of a sync: pacing, backoff, report polling.
    """

    def __init__(
        self,
        rates: Mapping[str, Rate] = DEFAULT_RATES,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rates = dict(rates)
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    async def wait(self, account: str, operation: str) -> None:
        """Returns once the account may call the operation again."""
        # Reserving awaits nothing, so callers on the event loop take tokens one at a time.
        now = self.clock()
        bucket = self._buckets.get((account, operation))
        if bucket is None:
            bucket = self._buckets[(account, operation)] = TokenBucket(self._rates[operation], now)
        delay = bucket.reserve(now)
        if delay > 0:
            PACING_WAIT.labels(MARKETPLACE_OF.get(operation, ""), operation).inc(delay)
            await self.sleep(delay)


class Transient(Exception):
    """An attempt failed in a way another attempt may not; `reason` completes "kept ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRejected(Exception):
    """The marketplace refused the access token (expired or unknown): fetch a new one."""


@dataclass(frozen=True)
class Caller:
    """Makes one account's calls to one marketplace: paced, retried, re-authorized.

    `refresh_token` forgets the access token that the attempt just refused had sent, so that
    the next attempt fetches a new one.
    """

    marketplace_label: str
    account: str
    pacer: Pacer
    backoff: Backoff
    refresh_token: Callable[[], None]

    async def call(self, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
        attempts = 0
        refreshed = False
        while True:
            await self.pacer.wait(self.account, operation)
            try:
                return await attempt()
            except TokenRejected as error:
                # A token can expire mid-sync: refresh it once and go on. Rejecting the fresh
                # token too means something else is wrong, and retrying would not help.
                if refreshed:
                    raise MarketplaceError(
                        self.marketplace_label.lower(),
                        f"{self.marketplace_label} rejected a freshly issued access token "
                        f"({error}): reconnect your {self.marketplace_label} account",
                    ) from error
                refreshed = True
                self.refresh_token()
            except Transient as failure:
                attempts += 1
                if self.backoff.exhausted(attempts):
                    raise MarketplaceError(
                        self.marketplace_label.lower(),
                        f"{self.marketplace_label} kept {failure.reason} after {attempts} "
                        "attempts; try again later",
                        retryable=True,
                    ) from failure
                await self.pacer.sleep(self.backoff.delay(attempts - 1))


class PageCursors:
    """The cursors one paging loop has followed, so a cursor handed back again ends the sync.

    A marketplace that answers a page with a cursor it gave before would otherwise keep the
    loop going forever; `repeated` is the seller's message for that.
    """

    def __init__(self, marketplace: str, repeated: str, *, first: str = "") -> None:
        self._marketplace = marketplace
        self._repeated = repeated
        self._seen = {first} if first else set()

    def follow(self, cursor: object) -> str:
        """The cursor of the next page; "" when there is none."""
        if not cursor:
            return ""
        text = str(cursor)
        if text in self._seen:
            raise MarketplaceError(self._marketplace, self._repeated, retryable=True)
        self._seen.add(text)
        return text
