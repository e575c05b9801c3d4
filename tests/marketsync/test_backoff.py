"""The one backoff: its waits as pure maths (random fractions injected), its budget, its sleep."""

from __future__ import annotations

import random
import time

import pytest

from marketsync.backoff import Backoff


def test_the_ceiling_doubles_each_retry_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=3.0, jitter=0.0)

    assert [backoff.delay(retry) for retry in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_waits_anything_from_nothing_to_the_ceiling() -> None:
    draws = iter([0.0, 0.5, 0.75])
    backoff = Backoff(base_seconds=1.0, cap_seconds=10.0, random_fraction=lambda: next(draws))

    assert [backoff.delay(retry) for retry in range(3)] == [1.0, 1.0, 1.0]


def test_partial_jitter_keeps_the_rest_of_the_ceiling() -> None:
    backoff = Backoff(base_seconds=2.0, cap_seconds=60.0, jitter=0.5, random_fraction=lambda: 1.0)

    assert [backoff.delay(retry) for retry in range(3)] == [1.0, 2.0, 4.0]


def test_seeded_waits_stay_within_their_ceilings() -> None:
    backoff = Backoff(base_seconds=0.1, cap_seconds=2.0, random_fraction=random.Random(7).random)
    waits = [backoff.delay(retry) for retry in range(50)]

    assert all(0 < wait <= min(2.0, 0.1 * 2**retry) for retry, wait in enumerate(waits))
    assert len(set(waits)) == len(waits)


def test_a_long_run_of_retries_stays_at_the_cap() -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=30.0, jitter=0.0)

    assert backoff.delay(5000) == 30.0


def test_attempts_count_every_try() -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=1.0, attempts=3)

    assert [backoff.exhausted(failures) for failures in (1, 2, 3)] == [False, False, True]
    assert not Backoff(base_seconds=1.0, cap_seconds=1.0).exhausted(10**6)


def test_without_a_deadline_retrying_never_runs_out_of_time() -> None:
    assert Backoff(base_seconds=1.0, cap_seconds=1.0).deadline() == float("inf")


def test_no_sleep_once_the_deadline_has_passed() -> None:
    backoff = Backoff(base_seconds=60.0, cap_seconds=60.0, deadline_seconds=0.0)

    assert backoff.sleep(0, backoff.deadline()) is False


def test_a_sleep_is_cut_short_at_the_deadline() -> None:
    backoff = Backoff(base_seconds=3600.0, cap_seconds=3600.0, jitter=0.0)

    assert backoff.sleep(0, time.monotonic() + 0.01) is True


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"base_seconds": 2.0, "cap_seconds": 1.0}, "base_seconds <= cap_seconds"),
        ({"base_seconds": -1.0, "cap_seconds": 1.0}, "base_seconds <= cap_seconds"),
        ({"base_seconds": 1.0, "cap_seconds": 1.0, "jitter": 1.5}, "jitter"),
        ({"base_seconds": 1.0, "cap_seconds": 1.0, "attempts": 0}, "attempts"),
        ({"base_seconds": 1.0, "cap_seconds": 1.0, "deadline_seconds": -1.0}, "deadline_seconds"),
    ],
)
def test_settings_that_make_no_sense_are_refused(settings: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Backoff(**settings)  # type: ignore[arg-type]
