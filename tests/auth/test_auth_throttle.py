"""The per-client rate limit: token buckets, and which address a call is counted against."""

from __future__ import annotations

import pytest

from marketsync.errors import ResourceExhausted
from services.auth.throttle import ClientRateLimit, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    limit = ClientRateLimit(burst=3, per_minute=6, clock=clock)  # one attempt every 10 s
    for _ in range(3):
        limit.take("203.0.113.1")
    with pytest.raises(ResourceExhausted, match="from your address; try again in 10 seconds"):
        limit.take("203.0.113.1")
    clock.now += 4
    with pytest.raises(ResourceExhausted, match="try again in 6 seconds"):
        limit.take("203.0.113.1")
    clock.now += 6
    limit.take("203.0.113.1")
    with pytest.raises(ResourceExhausted):
        limit.take("203.0.113.1")


def test_refused_attempts_do_not_push_the_retry_further_away() -> None:
    clock = Clock()
    limit = ClientRateLimit(burst=1, per_minute=60, clock=clock)
    limit.take("203.0.113.1")
    for _ in range(50):
        with pytest.raises(ResourceExhausted, match=r"try again in 1 second$"):
            limit.take("203.0.113.1")
    clock.now += 1
    limit.take("203.0.113.1")


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limit = ClientRateLimit(burst=2, per_minute=60, clock=clock)
    limit.take("203.0.113.1")
    clock.now += 3600
    limit.take("203.0.113.1")
    limit.take("203.0.113.1")
    with pytest.raises(ResourceExhausted):
        limit.take("203.0.113.1")


def test_clients_have_their_own_buckets() -> None:
    limit = ClientRateLimit(burst=1, per_minute=1, clock=Clock())
    limit.take("203.0.113.1")
    with pytest.raises(ResourceExhausted):
        limit.take("203.0.113.1")
    limit.take("203.0.113.2")


def test_the_longest_idle_client_is_forgotten_first() -> None:
    clock = Clock()
    limit = ClientRateLimit(burst=1, per_minute=1, clock=clock, max_clients=2)
    limit.take("a")
    limit.take("b")
    with pytest.raises(ResourceExhausted):
        limit.take("a")  # refused, yet now the most recently seen
    limit.take("c")  # forgets b, the longest idle
    with pytest.raises(ResourceExhausted):
        limit.take("a")
    limit.take("b")


@pytest.mark.parametrize(("burst", "per_minute"), [(0, 10), (5, 0), (5, -1)])
def test_a_limit_that_could_never_admit_is_refused(burst: int, per_minute: float) -> None:
    with pytest.raises(ValueError, match="burst of at least 1"):
        ClientRateLimit(burst=burst, per_minute=per_minute)


@pytest.mark.parametrize(
    ("metadata", "peer", "key"),
    [
        # Envoy's header wins over the peer (Envoy itself) ...
        ({"x-envoy-external-address": "203.0.113.9"}, "ipv4:10.0.0.5:41000", "203.0.113.9"),
        # ... and what a client may write itself is never read.
        (
            {"x-forwarded-for": "198.51.100.1", "x-real-ip": "198.51.100.2"},
            "ipv4:10.0.0.5:41000",
            "10.0.0.5",
        ),
        ({"x-envoy-external-address": "not an address"}, "ipv4:10.0.0.5:1", "10.0.0.5"),
        ({}, "ipv6:[2001:db8::1]:41000", "2001:db8::/64"),
        # One subscriber's /64 is one client, however many of its addresses it uses.
        ({"x-envoy-external-address": "2001:db8:0:7:a::1"}, "ipv4:10.0.0.5:1", "2001:db8:0:7::/64"),
        ({"x-envoy-external-address": "::ffff:203.0.113.4"}, "ipv4:10.0.0.5:1", "203.0.113.4"),
        ({}, "unix:/tmp/auth.sock", "unix:/tmp/auth.sock"),
    ],
)
def test_client_address(metadata: dict[str, str], peer: str, key: str) -> None:
    assert client_address(metadata, peer) == key
