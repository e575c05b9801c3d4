"""The catalog's product storage, as the servicer uses it: reads, writes and deletes of an
organization's products, one at a time or in batches, on DynamoDB.

The items a product is stored as, and what a write puts, are services/catalog/items.py's; pages
of products are pages.py's; the batch calls and their retries are dynamo.py's. This module puts
those items so that concurrent writers never undo each other's claims.

Concurrency: each non-owner marketplace writes only its own LISTING# item, and price points have
unique keys, so neither is ever overwritten by another writer. Every write puts those side items
first and METADATA last, whose content hash then vouches for them (an equal hash means nothing
to write). A write that claims something for good (creates the product, takes the owner's
listing or sets the first price) must not be undone by another writer's put:
- Creations hold the organization's creation lease (services/catalog/leases.py) from the
  consistent read that found the products absent to their puts, so a batch creates with
  BatchWriteItem, 25 products a call, at a write unit and its GSI1 entry each.
- Claims on a product that exists are conditional on its `version`, and so is any write planned
  on a product still open to such a claim: an unconditional put planned before a claim would
  undo it. They retry on conflict, with jittered backoff until the backoff's deadline: a count
  of retries runs out under a few dozen concurrent writers.
- Batch writes to products past every claim go through BatchWriteItem too: their top-level
  fields are last-wins, and they carry the owner's listing and the first point forward, which
  never change once set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from marketsync.backoff import Backoff
from marketsync.errors import DomainError, InvalidArgument, NotFound, Unavailable
from marketsync.identity import utcnow
from marketsync.marketplaces import validate_marketplace
from services.catalog.domain import (
    MAX_BATCH_SIZE,
    MAX_DELETE_BATCH_SIZE,
    BatchDeleteResult,
    BatchResult,
    PricePoint,
    Product,
    ProductInput,
    ProductPage,
    validate_page_size,
    validate_product_input,
    validate_stored_sku,
)
from services.catalog.dynamo import (
    CLIENT_POOL_CONNECTIONS,
    CONDITION_FAILED,
    MAX_BATCH_GET_KEYS,
    BatchCalls,
    Item,
    WriteRequest,
    dynamodb_errors,
    error_code,
    failure_message,
    is_retryable,
)
from services.catalog.items import (
    LISTING_PREFIX,
    METADATA,
    WritePlan,
    check_size,
    plan_write,
    price_history,
    product_from_item,
    product_listings,
    product_pk,
)
from services.catalog.leases import CreationLeases, Stored
from services.catalog.pages import ProductPages

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client and plain dicts.
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutItemInputTypeDef, QueryInputTypeDef

# Calls in flight for every batch this process handles at once (a catalog serves many syncs'
# batches side by side): conditional puts go one product a call, BatchWriteItem 25 products and
# BatchGetItem 100 keys a call. A quarter of the client's connections each leaves the rest to
# single reads.
CONDITIONAL_WRITERS = CLIENT_POOL_CONNECTIONS // 4
BATCH_WORKERS = CLIENT_POOL_CONNECTIONS // 4
# Throttled calls and write conflicts: full jitter spreads out writers that collided, and one
# operation keeps retrying for at most the deadline.
STORE_BACKOFF = Backoff(base_seconds=0.05, cap_seconds=2.0, deadline_seconds=20.0)


@dataclass(slots=True)
class _Outcome:
    """What became of one product's conditional write in a batch."""

    written: bool = False  # False without a failure: its content was stored meanwhile
    failure: str = ""
    retries: int = 0


class ProductStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        page_token_key: bytes,
        *,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff = STORE_BACKOFF,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._backoff = backoff
        self._leases = CreationLeases(client, table_name)
        self._conditional_writers = ThreadPoolExecutor(
            CONDITIONAL_WRITERS, thread_name_prefix="catalog-conditional-put"
        )
        self._batch = BatchCalls(
            client, table_name, backoff, workers=BATCH_WORKERS, thread_name_prefix="catalog-batch"
        )
        self._pages = ProductPages(client, table_name, page_token_key, self._batch, backoff)

    # Reads

    def get(self, organization_id: int, sku: str) -> Product:
        validate_stored_sku(sku)
        item, listing_items = self._read_product(product_pk(organization_id, sku))
        if item is None:
            raise NotFound(f"product {sku} does not exist")
        return product_from_item(item, product_listings(item, listing_items))

    def get_many(self, organization_id: int, skus: Sequence[str]) -> list[Product]:
        """The stored products of these SKUs, without listings; absent ones are left out."""
        if len(skus) > MAX_BATCH_GET_KEYS:
            raise InvalidArgument(f"skus: at most {MAX_BATCH_GET_KEYS} per call, got {len(skus)}")
        # A SKU that could never be stored is simply not there.
        keys = {(product_pk(organization_id, sku), METADATA) for sku in skus if _is_valid_sku(sku)}
        deadline = self._backoff.deadline()
        found, unread, _ = self._batch.get(keys, deadline, consistent=False)
        if unread:
            raise Unavailable("the catalog is busy; try again shortly")
        return [product_from_item(item, ()) for item in found.values()]

    def list_page(
        self, organization_id: int, page_size: int, page_token: str = "", marketplace: str = ""
    ) -> ProductPage:
        """Newest first; with a marketplace, only products that have a listing there."""
        validate_page_size(page_size)
        validate_marketplace(marketplace, empty_allowed=True)
        return self._pages.page(organization_id, page_size, page_token, marketplace)

    def price_history(self, organization_id: int, sku: str) -> list[PricePoint]:
        """Oldest first: METADATA's first point, then the PRICE# points (all of them for
        products stored before the first point moved into METADATA)."""
        validate_stored_sku(sku)
        pk = product_pk(organization_id, sku)
        # METADATA and the points in one Query: PRICE# sorts after METADATA, and nothing else.
        items = self._query_partition(
            pk,
            "PK = :pk AND SK >= :metadata",
            {":pk": {"S": pk}, ":metadata": {"S": METADATA}},
        )
        product = next((item for item in items if item["SK"]["S"] == METADATA), None)
        if product is None:
            raise NotFound(f"product {sku} does not exist")
        return price_history(product, items)

    # Writes

    def upsert(self, organization_id: int, product: ProductInput) -> Product:
        """Store one product; returns it as stored. Unchanged content writes nothing."""
        validate_product_input(product)
        pk = product_pk(organization_id, product.sku)
        deadline = self._backoff.deadline()
        attempt = 0
        while True:
            current, listing_items = self._read_product(pk)
            if current is None:
                created = self._create(organization_id, product, deadline)
                if created is not None:
                    return product_from_item(
                        created.product_item, product_listings(created.product_item, [])
                    )
                continue  # another writer created it meanwhile: write over theirs
            plan = plan_write(organization_id, product, current, self._clock())
            if plan is None:
                return product_from_item(current, product_listings(current, listing_items))
            check_size(plan)
            with dynamodb_errors():
                written = self._put_conditionally(plan)
            if written:
                stored, side = plan.product_item, plan.side_items
                listing_items += [i for i in side if i["SK"]["S"].startswith(LISTING_PREFIX)]
                return product_from_item(stored, product_listings(stored, listing_items))
            if not self._backoff.sleep(attempt, deadline):
                raise Unavailable(
                    f"product {product.sku} kept changing while it was being written; try again"
                )
            attempt += 1

    def batch_upsert(self, organization_id: int, products: Sequence[ProductInput]) -> BatchResult:
        """Store up to 1000 products; a SKU given twice counts once and the last one wins."""
        if len(products) > MAX_BATCH_SIZE:
            raise InvalidArgument(
                f"products holds {len(products)} items; a batch takes at most {MAX_BATCH_SIZE}"
            )
        result = BatchResult()
        latest = {product.sku: product for product in products}
        valid: dict[str, ProductInput] = {}
        for sku, product in latest.items():
            try:
                validate_product_input(product)
            except InvalidArgument as exc:
                result.failed.append((sku, exc.message))
                continue
            valid[sku] = product
        deadline = self._backoff.deadline()
        lease_before_read = self._leases.observe(organization_id)
        plans = self._plan_batch(organization_id, valid, deadline, result)
        creations = [plan for plan in plans if plan.expected_version is None]
        if creations:
            plans = [plan for plan in plans if plan.expected_version is not None]
            plans += self._create_all(
                organization_id, creations, valid, lease_before_read, deadline, result
            )
        conditional = [
            (
                plan.sku,
                # The caller's context goes along: its capacity tally (capacity.tally_units).
                self._conditional_writers.submit(
                    copy_context().run,
                    self._put_until_stored,
                    organization_id,
                    valid[plan.sku],
                    plan,
                    deadline,
                ),
            )
            for plan in plans
            if plan.conditional
        ]
        blind = [plan for plan in plans if not plan.conditional]
        side_failures, side_retries = self._batch.write(
            [
                (plan.sku, {"PutRequest": {"Item": item}})
                for plan in blind
                for item in plan.side_items
            ],
            deadline,
        )
        product_failures, product_retries = self._batch.write(
            [
                (plan.sku, {"PutRequest": {"Item": plan.product_item}})
                for plan in blind
                if plan.sku not in side_failures
            ],
            deadline,
        )
        failures = side_failures | product_failures
        result.failed.extend(failures.items())
        result.upserted += len(blind) - len(failures)
        result.retries += side_retries + product_retries
        for sku, pending in conditional:
            outcome = pending.result()
            result.retries += outcome.retries
            if outcome.failure:
                result.failed.append((sku, outcome.failure))
            elif outcome.written:
                result.upserted += 1
            else:
                result.unchanged += 1
        return result

    def _create_all(
        self,
        organization_id: int,
        creations: list[WritePlan],
        products: dict[str, ProductInput],
        lease_before_read: Stored,
        deadline: float,
        result: BatchResult,
    ) -> list[WritePlan]:
        """Put the planned creations under the organization's creation lease, counting them in
        `result`; the plans of products another writer created meanwhile, to write over theirs."""
        planned: list[WritePlan] | None = None
        new: list[WritePlan] = []
        try:
            with self._leases.held(organization_id, deadline, lease_before_read) as lease:
                if lease.undisturbed:
                    # Nobody took the lease since before the products were read: still absent.
                    planned = creations
                else:
                    # Read again under the lease: only now can no other writer create them.
                    again = {plan.sku: products[plan.sku] for plan in creations}
                    planned = self._plan_batch(organization_id, again, deadline, result)
                new = [plan for plan in planned if plan.expected_version is None]
                failures, retries = self._batch.write(
                    [(plan.sku, {"PutRequest": {"Item": plan.product_item}}) for plan in new],
                    deadline,
                    before_each_call=lease.keep,
                )
        except DomainError as exc:
            # The lease stayed taken, or was lost midway: the creations may be stored or not.
            unsettled = creations if planned is None else new
            result.failed.extend((plan.sku, exc.message) for plan in unsettled)
            return [plan for plan in planned or [] if plan.expected_version is not None]
        result.failed.extend(failures.items())
        result.upserted += len(new) - len(failures)
        result.retries += retries
        return [plan for plan in planned if plan.expected_version is not None]

    def _plan_batch(
        self,
        organization_id: int,
        products: dict[str, ProductInput],
        deadline: float,
        result: BatchResult,
    ) -> list[WritePlan]:
        """Plans for the products whose stored content differs, read with one consistent
        BatchGetItem a hundred; the others counted in `result` as unchanged or failed."""
        keys = {sku: (product_pk(organization_id, sku), METADATA) for sku in products}
        current, unread, retries = self._batch.get(keys.values(), deadline, consistent=True)
        result.retries += retries
        now = self._clock()
        plans: list[WritePlan] = []
        for sku, product in products.items():
            if keys[sku] in unread:
                result.failed.append((sku, "the stored product could not be read; not written"))
                continue
            plan = plan_write(organization_id, product, current.get(keys[sku]), now)
            if plan is None:
                result.unchanged += 1
                continue
            try:
                check_size(plan)
            except InvalidArgument as exc:
                result.failed.append((sku, exc.message))
                continue
            plans.append(plan)
        return plans

    def batch_delete(self, organization_id: int, skus: Sequence[str]) -> BatchDeleteResult:
        """Delete up to 100 products, each as `delete` does; a SKU given twice counts once."""
        if len(skus) > MAX_DELETE_BATCH_SIZE:
            raise InvalidArgument(
                f"skus: at most {MAX_DELETE_BATCH_SIZE} per request, got {len(skus)}"
            )
        result = BatchDeleteResult()
        for sku in dict.fromkeys(skus):
            try:
                self.delete(organization_id, sku)
            except NotFound:
                result.not_found.append(sku)
            except DomainError as exc:
                # One product's trouble (a bad SKU, DynamoDB busy) leaves the others to go on.
                result.failed.append((sku, exc.message))
            else:
                result.deleted += 1
        return result

    def delete(self, organization_id: int, sku: str) -> None:
        """Delete the product with its listings and price history; NotFound if absent."""
        validate_stored_sku(sku)
        pk = product_pk(organization_id, sku)
        items = self._query_partition(pk, "PK = :pk", {":pk": {"S": pk}}, projection="PK, SK")
        if not any(item["SK"]["S"] == METADATA for item in items):
            raise NotFound(f"product {sku} does not exist")
        # METADATA goes last: until it does, the product is whole enough to delete again.
        side: list[tuple[str, WriteRequest]] = [
            (sku, {"DeleteRequest": {"Key": item}}) for item in items if item["SK"]["S"] != METADATA
        ]
        failures, _ = self._batch.write(side, self._backoff.deadline())
        if failures:
            raise Unavailable(f"product {sku} could not be deleted completely; try again")
        with dynamodb_errors():
            self._client.delete_item(
                TableName=self._table, Key={"PK": {"S": pk}, "SK": {"S": METADATA}}
            )

    # DynamoDB calls of single products

    def _read_product(self, pk: str) -> tuple[Item | None, list[Item]]:
        """METADATA and the LISTING# items in one strongly consistent Query: they sort side by
        side."""
        items = self._query_partition(
            pk,
            "PK = :pk AND SK BETWEEN :first AND :last",
            {":pk": {"S": pk}, ":first": {"S": LISTING_PREFIX}, ":last": {"S": METADATA}},
        )
        product = next((item for item in items if item["SK"]["S"] == METADATA), None)
        return product, [item for item in items if item["SK"]["S"] != METADATA]

    def _query_partition(
        self, pk: str, condition: str, values: Item, projection: str | None = None
    ) -> list[Item]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if projection:
            query["ProjectionExpression"] = projection
        items: list[Item] = []
        with dynamodb_errors():
            while True:
                answer = self._client.query(**query)
                items.extend(answer.get("Items", []))
                if not answer.get("LastEvaluatedKey"):
                    return items
                query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _put_conditionally(self, plan: WritePlan) -> bool:
        """Write the plan; False when another writer changed the product since it was read.
        DynamoDB's own errors are left to the caller."""
        put: PutItemInputTypeDef = {"TableName": self._table, "Item": plan.product_item}
        if plan.expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "version = :version"
            put["ExpressionAttributeValues"] = {":version": {"N": str(plan.expected_version)}}
        for item in plan.side_items:
            self._client.put_item(TableName=self._table, Item=item)
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
        else:
            return True
        if plan.price_point_key:
            # The retry decides afresh whether the price changed; this point may not apply.
            pk, sk = plan.price_point_key
            self._client.delete_item(TableName=self._table, Key={"PK": {"S": pk}, "SK": {"S": sk}})
        return False

    def _put_until_stored(
        self, organization_id: int, product: ProductInput, plan: WritePlan, deadline: float
    ) -> _Outcome:
        """A batch's conditional write of one product: after a conflict, read the product
        again and plan afresh; after a failure worth retrying, put the same plan again."""
        outcome = _Outcome()
        pk = product_pk(organization_id, product.sku)
        attempt, stale = 0, False
        while True:
            try:
                if stale:
                    current = self._get_metadata(pk)
                    if current is None:
                        # Deleted meanwhile: created again as any creation is, under the lease.
                        if self._create(organization_id, product, deadline) is None:
                            continue
                        outcome.written = True
                        return outcome
                    replanned = plan_write(organization_id, product, current, self._clock())
                    if replanned is None:
                        return outcome
                    check_size(replanned)
                    plan, stale = replanned, False
                if self._put_conditionally(plan):
                    outcome.written = True
                    return outcome
                stale = True
                reason = f"product {product.sku} kept changing while it was being written"
            except DomainError as exc:  # too large, or the creation lease stayed taken
                outcome.failure = exc.message
                return outcome
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    outcome.failure = failure_message(exc)
                    return outcome
                reason = failure_message(exc)
            outcome.retries += 1
            if not self._backoff.sleep(attempt, deadline):
                outcome.failure = reason
                return outcome
            attempt += 1

    def _create(
        self, organization_id: int, product: ProductInput, deadline: float
    ) -> WritePlan | None:
        """Create the product under the organization's creation lease; the plan put, or None
        when it exists by then (written by a writer that does not take the lease, e.g. during a
        rolling upgrade, the conditional put still keeps theirs)."""
        pk = product_pk(organization_id, product.sku)
        lease_before_read = self._leases.observe(organization_id)
        with self._leases.held(organization_id, deadline, lease_before_read), dynamodb_errors():
            if self._get_metadata(pk) is not None:
                return None
            plan = plan_write(organization_id, product, None, self._clock())
            assert plan is not None, "a product that does not exist always has a write planned"
            check_size(plan)
            return plan if self._put_conditionally(plan) else None

    def _get_metadata(self, pk: str) -> Item | None:
        key = {"PK": {"S": pk}, "SK": {"S": METADATA}}
        answer = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: Item | None = answer.get("Item")
        return item


def _is_valid_sku(sku: str) -> bool:
    try:
        validate_stored_sku(sku)
    except InvalidArgument:
        return False
    return True
