"""Per-client rate limit of logins and registrations: a token bucket per client address.

Both calls may cost a bcrypt hash, so one client must not be able to spend the service's CPU at
will. The same address key also scopes the failed-login lockout (`logins.py`): a client's wrong
passwords lock only that client out of the email, which this limit alone could not ensure (five
wrong passwords every 15 minutes fit any sensible rate). Each client address has a bucket of
`burst` attempts that refills at `per_minute`; an attempt with the bucket empty is
RESOURCE_EXHAUSTED (429) saying when to try again, before the database or bcrypt is touched.

Which address: Envoy (`use_remote_address`) overwrites `x-envoy-external-address` on every
request with the client address it trusts (the peer, or the address found `xff_num_trusted_hops`
deep in `x-forwarded-for` when it is configured behind a proxy), so a client cannot choose it;
`x-forwarded-for`'s first entries, by contrast, are the client's to write. A call that did not
come through Envoy (only internal services can reach auth) is keyed by its peer address. IPv6
clients are keyed by their /64, the block one subscriber typically holds, so walking through
its addresses buys nothing.

The buckets live in memory, per auth replica: with N replicas behind Envoy's round robin, a
client gets up to N times the rate. That is the intended trade: the limit exists to shed load
before PostgreSQL and bcrypt, and a shared store would write to the database on every attempt
exactly when someone floods it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from marketsync.errors import ResourceExhausted

ENVOY_CLIENT_ADDRESS = "x-envoy-external-address"
# Enough for every client active within a refill period of a busy replica; beyond it the
# longest-idle bucket goes, which is as full as a new one unless that client came back lately.
MAX_TRACKED_CLIENTS = 100_000


def client_address(metadata: Mapping[str, str | bytes], peer: str) -> str:
    """The key of the calling client: Envoy's view of it, else the gRPC peer's address."""
    for candidate in (metadata.get(ENVOY_CLIENT_ADDRESS), _peer_host(peer)):
        if isinstance(candidate, str) and (key := _address_key(candidate)):
            return key
    # A Unix socket or an unreadable peer: not a client of the public API.
    return peer


def _peer_host(peer: str) -> str:
    """The host part of a gRPC peer string: `ipv4:10.0.0.7:5123`, `ipv6:[::1]:5123`."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return ""


def _address_key(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimit:
    """Token buckets by client key. Not thread-safe: used from the event loop only."""

    def __init__(
        self,
        *,
        burst: int,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("a rate limit needs a burst of at least 1 and a positive rate")
        self._burst = float(burst)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> None:
        """Spend one attempt of the client's, or ResourceExhausted saying when to retry."""
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._per_second)
        bucket.updated = now
        self._buckets[client] = bucket  # most recently used last
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / self._per_second))
            raise ResourceExhausted(
                "too many login and registration attempts from your address; "
                f"try again in {wait} second" + ("s" if wait > 1 else "")
            )
        bucket.tokens -= 1
