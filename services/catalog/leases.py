"""An organization's creation lease: one writer at a time creates products in it.

A batch creates products with BatchWriteItem, whose puts cannot be conditional. Two writers that
both read a SKU as absent and both put it blind would leave only the later item: the other's
listing, or its first price, lost. So every writer that creates products in an organization,
batch or single, holds the organization's lease from a read that found them absent to the end
of its puts. Writes to products that exist need no lease: they are conditional on the version,
or carry forward what no writer can change any more.

The lease is one small item, `PK=ORG#{org}#LEASE`, `SK=CREATE`, outside GSI1 (it has none of its
keys): a write unit to take and one to give back, two per batch against two per product created.
Every taking counts its `generation` up, so a writer that saw the lease free at generation g
before reading its products, and then takes it at g, knows nobody created anything between: its
read still holds, and it needs no second one (`Lease.undisturbed`).

A lease expires LEASE_SECONDS after it was taken or last renewed, by the holder's clock; a holder
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
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from marketsync.backoff import Backoff
from marketsync.errors import ResourceExhausted
from services.catalog.dynamo import (
    CONDITION_FAILED,
    error_code,
    is_retryable,
    translate,
)

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client.
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
RENEW_AFTER_SECONDS = 5.0
# Waiters look again soon: a batch holds the lease for the time of a few write calls.
WAIT_BACKOFF = Backoff(base_seconds=0.01, cap_seconds=0.2)
FREE = ""  # the holder of a lease nobody holds


def lease_key(organization_id: int) -> dict[str, dict[str, str]]:
    return {"PK": {"S": f"ORG#{organization_id}#LEASE"}, "SK": {"S": "CREATE"}}


@dataclass(frozen=True, slots=True)
class Stored:
    """The lease item as read; generation 0 when there is none yet."""

    generation: int
    holder: str = FREE
    expires_at: int = 0


@dataclass(slots=True)
class Lease:
    """A held lease; `keep` before each write call renews it when due (batch writes call it
    from several threads)."""

    leases: CreationLeases
    organization_id: int
    generation: int
    holder: str
    undisturbed: bool  # taken at the generation seen free before the caller's read
    renewed_at: float = field(default_factory=time.monotonic)
    renewing: threading.Lock = field(default_factory=threading.Lock)

    def keep(self) -> None:
        with self.renewing:
            if time.monotonic() - self.renewed_at >= RENEW_AFTER_SECONDS:
                self.leases.renew(self)


class CreationLeases:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def observe(self, organization_id: int) -> Stored:
        """The lease as it is now: read before products, it lets `held` skip a second read."""
        try:
            return self._read(organization_id)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc

    @contextmanager
    def held(
        self, organization_id: int, deadline: float, observed: Stored | None = None
    ) -> Iterator[Lease]:
        """Hold the organization's lease for the block; ResourceExhausted if other writers
        kept it until the deadline."""
        lease = self._acquire(organization_id, deadline, observed)
        try:
            yield lease
        finally:
            self._release(lease)

    def renew(self, lease: Lease) -> None:
        try:
            renewed = self._put(lease.organization_id, lease.generation, lease.holder, lease.holder)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc
        if not renewed:
            # It expired and another writer took it: our puts from here on could undo theirs.
            raise ResourceExhausted("the product store is busy; retry in a few seconds")
        lease.renewed_at = time.monotonic()

    def _acquire(self, organization_id: int, deadline: float, observed: Stored | None) -> Lease:
        holder = uuid.uuid4().hex
        stored = observed if observed is not None else Stored(generation=0)
        attempt = 0
        while True:
            try:
                if stored.holder == FREE or stored.expires_at < time.time():
                    taken = self._take(organization_id, stored, holder)
                    if taken:
                        undisturbed = observed is not None and stored is observed
                        return Lease(
                            self, organization_id, stored.generation + 1, holder, undisturbed
                        )
                busy: Exception = ResourceExhausted(
                    "another write is creating products in this organization; retry in a few "
                    "seconds"
                )
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise translate(exc) from exc
                busy = translate(exc)
            if not WAIT_BACKOFF.sleep(attempt, deadline):
                raise busy
            attempt += 1
            try:
                stored = self._read(organization_id)
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise translate(exc) from exc

    def _take(self, organization_id: int, stored: Stored, holder: str) -> bool:
        """Take the lease from the state `stored` (free, or expired); False if it moved on."""
        return self._put(organization_id, stored.generation + 1, holder, stored.holder, stored)

    def _put(
        self,
        organization_id: int,
        generation: int,
        holder: str,
        current_holder: str,
        current: Stored | None = None,
    ) -> bool:
        """Put the lease at `generation`, held by `holder` (FREE: given back), on condition that
        it is still at `current`'s generation (or, without `current`, at `generation`) and held
        by `current_holder`; False when it is not."""
        expected = current.generation if current is not None else generation
        if expected == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        else:
            condition = {
                "ConditionExpression": "generation = :generation AND holder = :holder",
                "ExpressionAttributeValues": {
                    ":generation": {"N": str(expected)},
                    ":holder": {"S": current_holder},
                },
            }
        expires_at = int(time.time()) + LEASE_SECONDS if holder != FREE else 0
        item = {
            **lease_key(organization_id),
            "generation": {"N": str(generation)},
            "holder": {"S": holder},
            "expires_at": {"N": str(expires_at)},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    def _read(self, organization_id: int) -> Stored:
        answer = self._client.get_item(
            TableName=self._table, Key=lease_key(organization_id), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return Stored(generation=0)
        return Stored(
            generation=int(item["generation"]["N"]),
            holder=item["holder"]["S"],
            expires_at=int(item["expires_at"]["N"]),
        )

    def _release(self, lease: Lease) -> None:
        try:
            given_back = self._put(lease.organization_id, lease.generation, FREE, lease.holder)
        except (ClientError, BotoCoreError) as exc:
            # The puts it guarded are done; a lease left held only makes the next creator wait
            # for its expiry.
            log.warning("could not give back the creation lease of an organization: %s", exc)
            return
        if not given_back:
            log.warning("the creation lease of an organization expired while it was held")
