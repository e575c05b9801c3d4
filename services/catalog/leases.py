"""An organization's creation lease: one writer at a time creates products in it.

A batch creates products with BatchWriteItem, whose puts cannot be conditional. Two writers that
both read a SKU as absent and both put it blind would leave only the later item: the other's
listing, or its first price, lost. So every writer that creates products in an organization,
batch or single, holds the organization's lease from the consistent read that found them absent
to the end of its puts. Writes to products that exist need no lease: they are conditional on
the version, or carry forward what no writer can change any more.

The lease is one small item, `PK=ORG#{org}#LEASE`, `SK=CREATE`, outside GSI1 (it has none of its
keys): a write unit to take and one to give back, two per batch against two per product created.
It expires LEASE_SECONDS after it was taken or last renewed, by the holder's clock; a holder
renews before a write call once RENEW_AFTER_SECONDS have passed, so every call it makes starts
with most of the period ahead, far more than a DynamoDB call takes or clocks drift apart. A
holder that died leaves the lease to the first writer that finds it expired.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from marketsync.errors import ResourceExhausted
from services.catalog.dynamo import (
    CONDITION_FAILED,
    Backoff,
    error_code,
    is_retryable,
    translate,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
RENEW_AFTER_SECONDS = 5.0
# Waiters look again soon: a batch holds the lease for the time of a few write calls.
WAIT_BACKOFF = Backoff(base_seconds=0.01, cap_seconds=0.2)


def lease_key(organization_id: int) -> dict[str, dict[str, str]]:
    return {"PK": {"S": f"ORG#{organization_id}#LEASE"}, "SK": {"S": "CREATE"}}


@dataclass(slots=True)
class Lease:
    """A held lease; `keep` before each write call renews it when due (batch writes call it
    from several threads)."""

    leases: CreationLeases
    organization_id: int
    version: str
    renewed_at: float
    renewing: threading.Lock = field(default_factory=threading.Lock)

    def keep(self) -> None:
        with self.renewing:
            if time.monotonic() - self.renewed_at >= RENEW_AFTER_SECONDS:
                self.leases.renew(self)


class CreationLeases:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @contextmanager
    def held(self, organization_id: int, deadline: float) -> Iterator[Lease]:
        """Hold the organization's lease for the block; ResourceExhausted if other writers
        kept it until the deadline."""
        lease = self._acquire(organization_id, deadline)
        try:
            yield lease
        finally:
            self._release(lease)

    def renew(self, lease: Lease) -> None:
        try:
            renewed = self._put(lease.organization_id, replacing=lease.version)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc
        if renewed is None:
            # It expired and another writer took it: our puts from here on could undo theirs.
            raise ResourceExhausted("the product store is busy; retry in a few seconds")
        lease.version, lease.renewed_at = renewed, time.monotonic()

    def _acquire(self, organization_id: int, deadline: float) -> Lease:
        attempt = 0
        while True:
            try:
                version = self._take(organization_id, first=attempt == 0)
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise translate(exc) from exc
                version, busy = None, translate(exc)
            else:
                busy = ResourceExhausted(
                    "another write is creating products in this organization; retry in a few "
                    "seconds"
                )
            if version is not None:
                return Lease(self, organization_id, version, time.monotonic())
            if not WAIT_BACKOFF.sleep(attempt, deadline):
                raise busy
            attempt += 1

    def _take(self, organization_id: int, *, first: bool) -> str | None:
        """The new version of the lease if this writer took it. A first try puts at once; the
        next ones read first, as a failed conditional put costs a write unit."""
        if first:
            return self._put(organization_id, replacing=None)
        stored = self._read(organization_id)
        if stored is None:
            return self._put(organization_id, replacing=None)
        version, expires_at = stored
        return self._put(organization_id, replacing=version) if expires_at < time.time() else None

    def _put(self, organization_id: int, *, replacing: str | None) -> str | None:
        """Put the lease if it is free (`replacing` None) or still at version `replacing`;
        its new version, or None when another writer holds it."""
        if replacing is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        else:
            condition = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"S": replacing}},
            }
        version = uuid.uuid4().hex
        item = {
            **lease_key(organization_id),
            "version": {"S": version},
            "expires_at": {"N": str(int(time.time()) + LEASE_SECONDS)},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return None
            raise
        return version

    def _read(self, organization_id: int) -> tuple[str, int] | None:
        """The stored lease's version and expiry (epoch seconds), or None when it is free."""
        answer = self._client.get_item(
            TableName=self._table, Key=lease_key(organization_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return (item["version"]["S"], int(item["expires_at"]["N"])) if item else None

    def _release(self, lease: Lease) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=lease_key(lease.organization_id),
                ConditionExpression="version = :version",
                ExpressionAttributeValues={":version": {"S": lease.version}},
            )
        except (ClientError, BotoCoreError) as exc:
            # The puts it guarded are done; a lease left behind only makes the next creator
            # wait for its expiry. A failed condition means another writer took it over.
            if not (isinstance(exc, ClientError) and error_code(exc) == CONDITION_FAILED):
                log.warning("could not give back the creation lease of an organization: %s", exc)
