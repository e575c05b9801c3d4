"""Pacing and retrying, on a fake clock: nothing here waits for real but the event-loop test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from marketsync.backoff import Backoff
from services.sync.marketplaces import MarketplaceError
from services.sync.marketplaces.pacing import (
    AMAZON_RATES,
    MARKETPLACE_BACKOFF,
    Caller,
    Pacer,
    PageCursors,
    Rate,
    TokenRejected,
    Transient,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def paced(clock: FakeClock, rates: dict[str, Rate]) -> Pacer:
    return Pacer(rates, clock=clock, sleep=clock.sleep)


def wait_in_turn(pacer: Pacer, *calls: tuple[str, str]) -> None:
    """Waits for each (account, operation) in turn, as one sync making those calls would."""

    async def in_turn() -> None:
        for account, operation in calls:
            await pacer.wait(account, operation)

    asyncio.run(in_turn())


def test_a_burst_goes_at_once_then_calls_come_at_the_rate(clock: FakeClock) -> None:
    pacer = paced(clock, {"searchCatalogItems": Rate(2, 2)})

    wait_in_turn(pacer, *[("org-1", "searchCatalogItems")] * 5)

    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_idle_time_refills_the_bucket_up_to_its_burst(clock: FakeClock) -> None:
    pacer = paced(clock, {"getReport": Rate(2, 15)})
    wait_in_turn(pacer, *[("org-1", "getReport")] * 15)
    clock.now += 60

    wait_in_turn(pacer, *[("org-1", "getReport")] * 15)

    assert clock.sleeps == []


def test_create_report_allows_fifteen_then_one_a_minute(clock: FakeClock) -> None:
    pacer = paced(clock, dict(AMAZON_RATES))

    wait_in_turn(pacer, *[("org-1", "createReport")] * 16)

    assert clock.sleeps == [pytest.approx(1 / 0.0167)]


def test_accounts_have_their_own_buckets_and_operations_too(clock: FakeClock) -> None:
    pacer = paced(clock, {"getAllItems": Rate(1, 1), "getInventories": Rate(1, 1)})

    wait_in_turn(
        pacer, ("org-1", "getAllItems"), ("org-2", "getAllItems"), ("org-1", "getInventories")
    )

    assert clock.sleeps == []


async def nothing() -> None:
    return None


def test_syncs_of_one_account_share_its_bucket(clock: FakeClock) -> None:
    pacer = paced(clock, {"getAllItems": Rate(1, 1)})
    first, second = (
        Caller("Walmart", "org-1", pacer, MARKETPLACE_BACKOFF, refresh_token=lambda: None)
        for _ in range(2)
    )

    async def both() -> None:
        await first.call("getAllItems", nothing)
        await second.call("getAllItems", nothing)

    asyncio.run(both())

    assert clock.sleeps == [1.0]


def test_a_paced_wait_leaves_the_event_loop_to_other_syncs() -> None:
    pacer = Pacer({"getAllItems": Rate(20, 1)})

    async def scenario() -> tuple[bool, bool]:
        await pacer.wait("org-1", "getAllItems")
        waiting = asyncio.create_task(pacer.wait("org-1", "getAllItems"))
        await asyncio.sleep(0)
        # Another account's call goes at once while org-1 waits its 50 ms.
        await pacer.wait("org-2", "getAllItems")
        waited_meanwhile = not waiting.done()
        await waiting
        return waited_meanwhile, waiting.done()

    assert asyncio.run(scenario()) == (True, True)


def test_marketplace_retries_wait_between_half_and_all_of_a_doubling_ceiling() -> None:
    least = replace(MARKETPLACE_BACKOFF, random_fraction=lambda: 1.0)
    most = replace(MARKETPLACE_BACKOFF, random_fraction=lambda: 0.0)

    assert [least.delay(retry) for retry in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert [most.delay(retry) for retry in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def caller(clock: FakeClock, *, refresh: list[str] | None = None) -> Caller:
    return Caller(
        "Walmart",
        "org-1",
        paced(clock, {"getAllItems": Rate(1000, 1000)}),
        Backoff(
            base_seconds=1.0, cap_seconds=30.0, jitter=0.5, attempts=4, random_fraction=lambda: 0.5
        ),
        refresh_token=lambda: (refresh if refresh is not None else []).append("refreshed"),
    )


def failing(times: int, failure: Exception) -> Callable[[], Awaitable[str]]:
    remaining = [times]

    async def attempt() -> str:
        if remaining[0]:
            remaining[0] -= 1
            raise failure
        return "page"

    return attempt


def test_transient_failures_are_retried_after_growing_pauses(clock: FakeClock) -> None:
    result = asyncio.run(caller(clock).call("getAllItems", failing(3, Transient("throttling"))))

    assert result == "page"
    assert clock.sleeps == [0.75, 1.5, 3.0]


def test_retries_are_bounded_and_the_failure_is_named(clock: FakeClock) -> None:
    with pytest.raises(MarketplaceError) as failure:
        asyncio.run(caller(clock).call("getAllItems", failing(10, Transient("throttling"))))

    assert failure.value.message == "Walmart kept throttling after 4 attempts; try again later"
    assert failure.value.marketplace == "walmart"
    assert failure.value.retryable
    assert len(clock.sleeps) == 3


def test_a_rejected_token_is_refreshed_once_and_the_call_goes_on(clock: FakeClock) -> None:
    refreshes: list[str] = []

    result = asyncio.run(
        caller(clock, refresh=refreshes).call("getAllItems", failing(1, TokenRejected("expired")))
    )

    assert result == "page"
    assert refreshes == ["refreshed"]
    assert clock.sleeps == []


def test_a_fresh_token_rejected_again_ends_the_sync(clock: FakeClock) -> None:
    refreshes: list[str] = []

    with pytest.raises(MarketplaceError, match="rejected a freshly issued access token") as failure:
        asyncio.run(
            caller(clock, refresh=refreshes).call(
                "getAllItems", failing(2, TokenRejected("expired"))
            )
        )
    assert refreshes == ["refreshed"]
    # The seller has to reconnect: the same sync again would fail the same way.
    assert not failure.value.retryable


def test_other_errors_are_not_retried(clock: FakeClock) -> None:
    with pytest.raises(MarketplaceError, match="nope"):
        asyncio.run(
            caller(clock).call("getAllItems", failing(1, MarketplaceError("walmart", "nope")))
        )
    assert clock.sleeps == []


def test_page_cursors_end_at_an_empty_cursor_and_refuse_one_seen_before() -> None:
    cursors = PageCursors("walmart", "Walmart kept returning the same page; try again later")

    assert [cursors.follow(cursor) for cursor in ("a", "b", None, "")] == ["a", "b", "", ""]
    with pytest.raises(MarketplaceError) as failure:
        cursors.follow("a")
    assert failure.value.message == "Walmart kept returning the same page; try again later"
    assert failure.value.marketplace == "walmart"
    assert failure.value.retryable


def test_the_first_cursor_counts_as_seen() -> None:
    cursors = PageCursors("walmart", "same page", first="*")

    with pytest.raises(MarketplaceError, match="same page"):
        cursors.follow("*")


def test_marketplace_errors_are_not_retryable_unless_said() -> None:
    assert not MarketplaceError("amazon", "Amazon refused createReport").retryable
    assert MarketplaceError("amazon", "Amazon report ended FATAL", retryable=True).retryable
