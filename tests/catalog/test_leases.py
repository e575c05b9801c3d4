"""The organization's creation lease: one creator at a time, and a dead holder's lease expires."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from marketsync.errors import ResourceExhausted
from services.catalog import leases
from services.catalog.leases import CreationLeases, lease_key

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
    assert "Item" not in client.get_item(TableName=table, Key=lease_key(ORG), ConsistentRead=True)


def test_organizations_have_leases_of_their_own(client: Any, table: str) -> None:
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()), creation.held(ORG + 1, soon(0.5)):
        pass


def test_a_lease_kept_past_the_deadline_is_answered_busy(client: Any, table: str) -> None:
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()), pytest.raises(ResourceExhausted, match="retry"):
        creation.held(ORG, soon(0.3)).__enter__()


def test_the_lease_of_a_holder_that_died_is_taken_once_it_expires(client: Any, table: str) -> None:
    dead = {**lease_key(ORG), "version": {"S": "dead"}, "expires_at": {"N": str(int(time.time()))}}
    client.put_item(TableName=table, Item=dead)
    time.sleep(1.1)
    with CreationLeases(client, table).held(ORG, soon()) as lease:
        assert lease.version != "dead"


def test_a_holder_whose_lease_was_taken_over_may_write_no_more(
    client: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases, "RENEW_AFTER_SECONDS", 0.0)
    creation = CreationLeases(client, table)
    with creation.held(ORG, soon()) as lease:
        lease.keep()  # renewed: still ours
        taken = {**lease_key(ORG), "version": {"S": "other"}, "expires_at": {"N": "0"}}
        client.put_item(TableName=table, Item=taken)
        with pytest.raises(ResourceExhausted):
            lease.keep()
    stored = client.get_item(TableName=table, Key=lease_key(ORG), ConsistentRead=True)
    assert stored["Item"]["version"]["S"] == "other", "a lost lease is not given back"
