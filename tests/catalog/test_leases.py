"""The organization's creation lease: one creator at a time, and a dead holder's lease expires."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from marketsync.errors import ResourceExhausted
from services.catalog import leases
from services.catalog.leases import CreationLeases, Stored, lease_key

ORG = 41


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def test_a_second_writer_waits_until_the_first_gives_the_lease_back(
    client: Any, table: str
) -> None:
    creation = CreationLeases(client, table)
    order: list[str] = []
    first_holds = threading.Event()

    def second() -> None:
        first_holds.wait()
        with creation.held(ORG, soon()):
            order.append("second")

    waiter = threading.Thread(target=second)
    waiter.start()
    with creation.held(ORG, soon()):
        first_holds.set()
        time.sleep(0.3)
        order.append("first")
    waiter.join()
    assert order == ["first", "second"]
    assert creation.observe(ORG) == Stored(generation=2), "free, taken twice"


def test_organizations_have_leases_of_their_own(client: Any, table: str) -> None:
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()), creation.held(ORG + 1, soon(0.5)):
        pass


def test_a_lease_kept_past_the_deadline_is_answered_busy(client: Any, table: str) -> None:
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()), pytest.raises(ResourceExhausted, match="retry"):
        creation.held(ORG, soon(0.3)).__enter__()


def test_the_lease_of_a_holder_that_died_is_taken_once_it_expires(client: Any, table: str) -> None:
    creation = CreationLeases(client, table)
    died = {
        **lease_key(ORG),
        **{"generation": {"N": "7"}, "holder": {"S": "dead"}},
        "expires_at": {"N": str(int(time.time()))},
    }
    client.put_item(TableName=table, Item=died)
    time.sleep(1.1)
    with creation.held(ORG, soon()) as lease:
        assert (lease.generation, lease.undisturbed) == (8, False)
    assert creation.observe(ORG) == Stored(generation=8)


def test_a_lease_taken_at_the_generation_seen_before_the_read_is_undisturbed(
    client: Any, table: str
) -> None:
    creation = CreationLeases(client, table)
    seen = creation.observe(ORG)
    with creation.held(ORG, soon(), seen) as lease:
        assert lease.undisturbed
    # Another writer took it (and gave it back) after this one looked: its read may be stale.
    seen = creation.observe(ORG)
    with creation.held(ORG, soon()):
        pass
    with creation.held(ORG, soon(), seen) as lease:
        assert not lease.undisturbed
        assert lease.generation == 3


def test_a_holder_whose_lease_was_taken_over_may_write_no_more(
    client: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases, "RENEW_AFTER_SECONDS", 0.0)
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()) as lease:
        lease.keep()  # renewed: still ours
        taken = {
            **lease_key(ORG),
            **{"generation": {"N": str(lease.generation + 1)}, "holder": {"S": "other"}},
            "expires_at": {"N": str(int(time.time()) + 30)},
        }
        client.put_item(TableName=table, Item=taken)
        with pytest.raises(ResourceExhausted):
            lease.keep()
    assert creation.observe(ORG).holder == "other", "a lost lease is not given back"
