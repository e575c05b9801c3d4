"""Waiting between retries: exponential backoff, capped, with jitter, within a retry budget.

Retry n (counted from 0) may wait up to min(cap, base * 2**n). `jitter` is the share of that
ceiling left to chance, so that callers failing together do not come back together: 1 waits
anything from nothing to the ceiling (full jitter, for many writers contending for one table),
0.5 at least half of it (a throttled marketplace is never called straight back), 0 exactly the
ceiling (a lone process restarting has nobody to spread out from). A caller gives up after
`attempts` tries or `deadline_seconds`, whichever it uses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

# Past 2**100 every cap has long been reached, and larger powers would overflow a float.
_MAX_DOUBLINGS = 100


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float
    cap_seconds: float
    jitter: float = 1.0
    # Tries in all, the first included; None: no limit.
    attempts: int | None = None
    # How long one operation keeps retrying; None: no limit.
    deadline_seconds: float | None = None
    # A number in [0, 1) for each wait; tests inject theirs to know the waits.
    random_fraction: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if not 0 <= self.base_seconds <= self.cap_seconds:
            raise ValueError(
                f"backoff: need 0 <= base_seconds <= cap_seconds, "
                f"got {self.base_seconds} and {self.cap_seconds}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff: jitter must be between 0 and 1, got {self.jitter}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"backoff: attempts must be at least 1, got {self.attempts}")
        if self.deadline_seconds is not None and self.deadline_seconds < 0:
            raise ValueError(
                f"backoff: deadline_seconds must not be negative, got {self.deadline_seconds}"
            )

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` (0 for the first), in seconds."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry, _MAX_DOUBLINGS))
        return ceiling * (1 - self.jitter * self.random_fraction())

    def exhausted(self, failures: int) -> bool:
        """Whether `failures` failed tries use up the attempts."""
        return self.attempts is not None and failures >= self.attempts

    def deadline(self) -> float:
        """The `time.monotonic()` at which an operation starting now stops retrying."""
        if self.deadline_seconds is None:
            return float("inf")
        return time.monotonic() + self.deadline_seconds

    def sleep(self, retry: int, deadline: float) -> bool:
        """Sleep before retry number `retry`, never past `deadline` (a `time.monotonic()`);
        False, without sleeping, once the deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(self.delay(retry), remaining))
        return True
