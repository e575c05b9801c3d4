"""Products in DynamoDB, one partition per (organization, SKU): PK ORG#{org}#PRODUCT#{sku}.

Items, by SK:
- METADATA: the product as its latest write left it, in GSI1 (organizationId, created_at). Its
  map `listing` holds the listing of the marketplace that first synced the product (its
  owner), and its map `first_point` the first stored price (`price`, `currency`, and
  `recorded_at` when that is not created_at): the first point of the price history.
- LISTING#{marketplace}: the listing of any other marketplace.
- PRICE#{time}#{random}: one per later price change.

So a first sync writes METADATA alone: one write unit while it stays under 1 KB, and one for
its GSI1 entry, which holds its keys only and so is never written again: a price change costs
METADATA and its point, an inventory change METADATA alone. Products stored before `listing` and
`first_point` existed keep a LISTING# item per marketplace and a PRICE# item per point, first
included; reads take those as they are, and the owner's listing moves into METADATA with the
product's next changed write, leaving the owner's LISTING# item unread.

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

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from marketsync.backoff import Backoff
from marketsync.errors import DomainError, InvalidArgument, NotFound, Unavailable
from marketsync.identity import utcnow
from marketsync.marketplaces import MARKETPLACES, validate_marketplace
from marketsync.page_tokens import PageTokenSigner
from services.catalog.domain import (
    MAX_BATCH_SIZE,
    MAX_DELETE_BATCH_SIZE,
    BatchDeleteResult,
    BatchResult,
    Listing,
    PricePoint,
    Product,
    ProductInput,
    ProductPage,
    format_price,
    format_timestamp,
    normalize_price,
    parse_timestamp,
    validate_page_size,
    validate_product_input,
    validate_stored_sku,
)
from services.catalog.dynamo import (
    CLIENT_POOL_CONNECTIONS,
    CONDITION_FAILED,
    MAX_BATCH_GET_KEYS,
    MAX_BATCH_WRITE_ITEMS,
    MAX_ITEM_BYTES,
    THROTTLING_CODES,
    dynamodb_errors,
    error_code,
    is_retryable,
    item_size,
    translate,
)
from services.catalog.leases import CreationLeases, Stored
from services.catalog.tables import GSI1

METADATA = "METADATA"
LISTING_PREFIX = "LISTING#"
PRICE_PREFIX = "PRICE#"
OWNER_LISTING = "listing"
FIRST_POINT = "first_point"
# With a marketplace filter most products read may be skipped, so read in full pages.
FILTERED_QUERY_LIMIT = 100
# A filtered page reads at most this many products; if it fills no page by then, it answers
# the products it found with a token to go on, so no request scans a whole organization.
MAX_SCANNED_PER_PAGE = 1000
# Calls in flight for every batch this process handles at once (a catalog serves many syncs'
# batches side by side): conditional puts go one product a call, BatchWriteItem 25 products and
# BatchGetItem 100 keys a call. A quarter of the client's connections each leaves the rest to
# single reads.
CONDITIONAL_WRITERS = CLIENT_POOL_CONNECTIONS // 4
BATCH_WORKERS = CLIENT_POOL_CONNECTIONS // 4
# Throttled calls and write conflicts: full jitter spreads out writers that collided, and one
# operation keeps retrying for at most the deadline.
STORE_BACKOFF = Backoff(base_seconds=0.05, cap_seconds=2.0, deadline_seconds=20.0)
_LIST_QUERY = "catalog.products"

Key = tuple[str, str]  # (PK, SK)
Item = dict[str, dict[str, Any]]


def _is_valid_sku(sku: str) -> bool:
    try:
        validate_stored_sku(sku)
    except InvalidArgument:
        return False
    return True


def product_pk(organization_id: int, sku: str) -> str:
    return f"ORG#{organization_id}#PRODUCT#{sku}"


def _sku_of(pk: str) -> str:
    """A product key's SKU: SKUs hold no '#'."""
    return pk.rsplit("#", 1)[1]


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything one product write puts, side items before the METADATA item."""

    sku: str
    product_item: Item
    side_items: list[Item]
    price_point_key: Key | None
    expected_version: int | None  # None: the product must not exist yet
    conditional: bool  # even in a batch: see the module's note on concurrency


@dataclass(slots=True)
class _Outcome:
    """What became of one product's conditional write in a batch."""

    written: bool = False  # False without a failure: its content was stored meanwhile
    failure: str = ""
    retries: int = 0


class ProductStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        page_token_key: bytes,
        *,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff = STORE_BACKOFF,
    ) -> None:
        self._client = client
        self._table = table_name
        self._tokens = PageTokenSigner(page_token_key)
        self._clock = clock
        self._backoff = backoff
        self._leases = CreationLeases(client, table_name)
        self._conditional_writers = ThreadPoolExecutor(
            CONDITIONAL_WRITERS, thread_name_prefix="catalog-conditional-put"
        )
        self._batch_workers = ThreadPoolExecutor(BATCH_WORKERS, thread_name_prefix="catalog-batch")

    # Reads

    def get(self, organization_id: int, sku: str) -> Product:
        validate_stored_sku(sku)
        item, listing_items = self._read_product(product_pk(organization_id, sku))
        if item is None:
            raise NotFound(f"product {sku} does not exist")
        return _product_from_item(item, _listings(item, listing_items))

    def get_many(self, organization_id: int, skus: Sequence[str]) -> list[Product]:
        """The stored products of these SKUs, without listings; absent ones are left out."""
        if len(skus) > MAX_BATCH_GET_KEYS:
            raise InvalidArgument(f"skus: at most {MAX_BATCH_GET_KEYS} per call, got {len(skus)}")
        # A SKU that could never be stored is simply not there.
        keys = {(product_pk(organization_id, sku), METADATA) for sku in skus if _is_valid_sku(sku)}
        deadline = self._backoff.deadline()
        found, unread, _ = self._batch_get(keys, deadline, consistent=False)
        if unread:
            raise Unavailable("the catalog is busy; try again shortly")
        return [_product_from_item(item, ()) for item in found.values()]

    def list_page(
        self, organization_id: int, page_size: int, page_token: str = "", marketplace: str = ""
    ) -> ProductPage:
        """Newest first; with a marketplace, only products that have a listing there."""
        validate_page_size(page_size)
        validate_marketplace(marketplace, empty_allowed=True)
        binding = {
            "query": _LIST_QUERY,
            "organization_id": organization_id,
            "marketplace": marketplace,
        }
        start_key = None
        if page_token:
            start_key = self._start_key(organization_id, self._tokens.decode(page_token, binding))
        # One product past the page tells whether another page exists, so the last page
        # carries no token even where DynamoDB returns a LastEvaluatedKey after it.
        found: list[Item] = []
        listings: dict[str, tuple[Listing, ...]] = {}
        read, last_read = 0, None
        while len(found) <= page_size:
            needed = page_size + 1 - len(found)
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": GSI1,
                "KeyConditionExpression": "organizationId = :org",
                "ExpressionAttributeValues": {":org": {"N": str(organization_id)}},
                "ScanIndexForward": False,
                "Limit": max(needed, FILTERED_QUERY_LIMIT) if marketplace else needed,
            }
            if start_key:
                query["ExclusiveStartKey"] = start_key
            with dynamodb_errors():
                answer = self._client.query(**query)
            items = answer.get("Items", [])
            read += len(items)
            if marketplace:
                # Filtered here, not with a FilterExpression: other listings are separate items.
                items = self._whole_products(items)
                last_read = items[-1] if items else last_read
                listings |= self._listings_of(items)
                items = [item for item in items if _listed_on(listings, item, marketplace)]
            found.extend(items[:needed])
            start_key = answer.get("LastEvaluatedKey")
            if not start_key or read >= MAX_SCANNED_PER_PAGE:
                break
        if marketplace:
            page = found[:page_size]
        else:
            # The entry past the page only tells that another page exists: not read whole.
            page = self._whole_products(found[:page_size])
            listings = self._listings_of(page)
        # Go on after the page's last entry, or after the last one read when the scan was cut.
        resume = (
            found[page_size - 1] if len(found) > page_size else last_read if start_key else None
        )
        next_token = (
            self._tokens.encode(
                {"sku": _sku_of(resume["PK"]["S"]), "created_at": resume["created_at"]["S"]},
                binding,
            )
            if resume
            else ""
        )
        products = [_product_from_item(item, listings[item["PK"]["S"]]) for item in page]
        return ProductPage(products=products, next_page_token=next_token)

    def _whole_products(self, entries: list[Item]) -> list[Item]:
        """The METADATA items of GSI1 entries, in their order. GSI1 holds keys only (see
        tables.py), so they are read by key, eventually consistent like the index itself; one
        deleted since the index was read is left out. A table made when GSI1 projected every
        attribute has them whole already."""
        if not entries or "version" in entries[0]:
            return entries
        keys = [(entry["PK"]["S"], entry["SK"]["S"]) for entry in entries]
        found, unread, _ = self._batch_get(keys, self._backoff.deadline(), consistent=False)
        if unread:
            raise Unavailable("the product store is busy; retry in a few seconds")
        return [found[key] for key in keys if key in found]

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
        points = [_point(item) for item in items if item["SK"]["S"].startswith(PRICE_PREFIX)]
        if FIRST_POINT in product:
            points.insert(0, _point(product[FIRST_POINT]["M"], _text(product, "created_at")))
        # By time, not by kind: a product stored before first points existed that lost its
        # price and got one again has its first point in METADATA after its PRICE# points.
        return sorted(points, key=lambda point: point.recorded_at)

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
                    return _product_from_item(
                        created.product_item, _listings(created.product_item, [])
                    )
                continue  # another writer created it meanwhile: write over theirs
            plan = _plan_write(organization_id, product, current, self._clock())
            if plan is None:
                return _product_from_item(current, _listings(current, listing_items))
            _check_size(plan)
            with dynamodb_errors():
                written = self._put_conditionally(plan)
            if written:
                stored, side = plan.product_item, plan.side_items
                listing_items += [i for i in side if i["SK"]["S"].startswith(LISTING_PREFIX)]
                return _product_from_item(stored, _listings(stored, listing_items))
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
        side_failures, side_retries = self._write_all(
            [
                (plan.sku, {"PutRequest": {"Item": item}})
                for plan in blind
                for item in plan.side_items
            ],
            deadline,
        )
        product_failures, product_retries = self._write_all(
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
        creations: list[_Plan],
        products: dict[str, ProductInput],
        lease_before_read: Stored,
        deadline: float,
        result: BatchResult,
    ) -> list[_Plan]:
        """Put the planned creations under the organization's creation lease, counting them in
        `result`; the plans of products another writer created meanwhile, to write over theirs."""
        planned: list[_Plan] | None = None
        new: list[_Plan] = []
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
                failures, retries = self._write_all(
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
    ) -> list[_Plan]:
        """Plans for the products whose stored content differs, read with one consistent
        BatchGetItem a hundred; the others counted in `result` as unchanged or failed."""
        keys = {sku: (product_pk(organization_id, sku), METADATA) for sku in products}
        current, unread, retries = self._batch_get(keys.values(), deadline, consistent=True)
        result.retries += retries
        now = self._clock()
        plans: list[_Plan] = []
        for sku, product in products.items():
            if keys[sku] in unread:
                result.failed.append((sku, "the stored product could not be read; not written"))
                continue
            plan = _plan_write(organization_id, product, current.get(keys[sku]), now)
            if plan is None:
                result.unchanged += 1
                continue
            try:
                _check_size(plan)
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
        side = [
            (sku, {"DeleteRequest": {"Key": item}}) for item in items if item["SK"]["S"] != METADATA
        ]
        failures, _ = self._write_all(side, self._backoff.deadline())
        if failures:
            raise Unavailable(f"product {sku} could not be deleted completely; try again")
        with dynamodb_errors():
            self._client.delete_item(
                TableName=self._table, Key={"PK": {"S": pk}, "SK": {"S": METADATA}}
            )

    # DynamoDB calls

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
        query: dict[str, Any] = {
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

    def _put_conditionally(self, plan: _Plan) -> bool:
        """Write the plan; False when another writer changed the product since it was read.
        DynamoDB's own errors are left to the caller."""
        if plan.expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        else:
            condition = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(plan.expected_version)}},
            }
        for item in plan.side_items:
            self._client.put_item(TableName=self._table, Item=item)
        try:
            self._client.put_item(TableName=self._table, Item=plan.product_item, **condition)
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
        self, organization_id: int, product: ProductInput, plan: _Plan, deadline: float
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
                    replanned = _plan_write(organization_id, product, current, self._clock())
                    if replanned is None:
                        return outcome
                    _check_size(replanned)
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
                    outcome.failure = _failure_message(exc)
                    return outcome
                reason = _failure_message(exc)
            outcome.retries += 1
            if not self._backoff.sleep(attempt, deadline):
                outcome.failure = reason
                return outcome
            attempt += 1

    def _create(self, organization_id: int, product: ProductInput, deadline: float) -> _Plan | None:
        """Create the product under the organization's creation lease; the plan put, or None
        when it exists by then (written by a writer that does not take the lease, e.g. during a
        rolling upgrade, the conditional put still keeps theirs)."""
        pk = product_pk(organization_id, product.sku)
        lease_before_read = self._leases.observe(organization_id)
        with self._leases.held(organization_id, deadline, lease_before_read), dynamodb_errors():
            if self._get_metadata(pk) is not None:
                return None
            plan = _plan_write(organization_id, product, None, self._clock())
            assert plan is not None, "a product that does not exist always has a write planned"
            _check_size(plan)
            return plan if self._put_conditionally(plan) else None

    def _get_metadata(self, pk: str) -> Item | None:
        key = {"PK": {"S": pk}, "SK": {"S": METADATA}}
        answer = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: Item | None = answer.get("Item")
        return item

    def _listings_of(self, items: list[Item]) -> dict[str, tuple[Listing, ...]]:
        """Listings of products by PK: the owner's from METADATA, every other marketplace's
        key read in as few BatchGetItem calls as a page allows (one for 100 products). A set of
        those marketplaces on METADATA would not save the call and could be lost: BatchWriteItem
        puts replace the whole item."""
        keys = [
            (item["PK"]["S"], LISTING_PREFIX + marketplace)
            for item in items
            for marketplace in MARKETPLACES
            if marketplace != _owner(item)
        ]
        found, unread, _ = self._batch_get(keys, self._backoff.deadline(), consistent=False)
        if unread:
            raise Unavailable("the product store is busy; retry in a few seconds")
        others: dict[str, list[Item]] = {}
        for (pk, _sk), listing_item in found.items():
            others.setdefault(pk, []).append(listing_item)
        return {item["PK"]["S"]: _listings(item, others.get(item["PK"]["S"], [])) for item in items}

    def _batch_get(
        self, keys: Iterable[Key], deadline: float, *, consistent: bool
    ) -> tuple[dict[Key, Item], set[Key], int]:
        """Items found by key, keys still unread when the deadline passed, and retries made.
        A hundred keys a call, the calls side by side on the batch workers."""
        queue = deque(keys)
        chunks = []
        while queue:
            chunks.append([queue.popleft() for _ in range(min(MAX_BATCH_GET_KEYS, len(queue)))])
        sent = [
            self._batch_workers.submit(
                copy_context().run, self._get_chunk, chunk, deadline, consistent
            )
            for chunk in chunks
        ]
        found: dict[Key, Item] = {}
        unread: set[Key] = set()
        retries = 0
        for pending in sent:
            chunk_found, chunk_unread, chunk_retries = pending.result()
            found |= chunk_found
            unread |= chunk_unread
            retries += chunk_retries
        return found, unread, retries

    def _get_chunk(
        self, chunk: list[Key], deadline: float, consistent: bool
    ) -> tuple[dict[Key, Item], set[Key], int]:
        """One BatchGetItem of up to 100 keys, its unprocessed keys asked again until the
        deadline."""
        found: dict[Key, Item] = {}
        retries = 0
        while True:
            request = {
                self._table: {
                    "Keys": [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in chunk],
                    "ConsistentRead": consistent,
                }
            }
            try:
                answer = self._client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise translate(exc) from exc
                unprocessed = chunk
            else:
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[(item["PK"]["S"], item["SK"]["S"])] = item
                pending = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                unprocessed = [(key["PK"]["S"], key["SK"]["S"]) for key in pending]
            if not unprocessed:
                return found, set(), retries
            if not self._backoff.sleep(retries, deadline):
                return found, set(unprocessed), retries + 1
            retries += 1
            chunk = unprocessed

    def _write_all(
        self,
        requests: list[tuple[str, dict[str, Any]]],
        deadline: float,
        before_each_call: Callable[[], None] = lambda: None,
    ) -> tuple[dict[str, str], int]:
        """Send write requests 25 a call, side by side on the batch workers, retrying unprocessed
        ones until the deadline.

        Returns the SKUs whose requests were not all written, with the reason, and the number
        of retries made.
        """
        owners = {_request_key(request): sku for sku, request in requests}
        queue = deque(request for _, request in requests)
        chunks = []
        while queue:
            chunks.append(_take_distinct(queue))
        sent = [
            self._batch_workers.submit(
                copy_context().run, self._write_chunk, chunk, deadline, before_each_call
            )
            for chunk in chunks
        ]
        failures: dict[str, str] = {}
        retries = 0
        for pending in sent:
            unwritten, chunk_retries = pending.result()
            retries += chunk_retries
            for request, reason in unwritten:
                failures[owners[_request_key(request)]] = reason
        return failures, retries

    def _write_chunk(
        self, chunk: list[dict[str, Any]], deadline: float, before_each_call: Callable[[], None]
    ) -> tuple[list[tuple[dict[str, Any], str]], int]:
        """One BatchWriteItem of up to 25 distinct keys, its unprocessed requests sent again
        until the deadline; the requests left unwritten with the reason, and the retries."""
        retries = 0
        while True:
            before_each_call()
            try:
                answer = self._client.batch_write_item(RequestItems={self._table: chunk})
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    return [(request, _failure_message(exc)) for request in chunk], retries
                unprocessed, reason = chunk, _failure_message(exc)
            else:
                unprocessed = answer.get("UnprocessedItems", {}).get(self._table, [])
                reason = "DynamoDB kept throttling the write; this product was not stored"
            if not unprocessed:
                return [], retries
            if not self._backoff.sleep(retries, deadline):
                return [(request, reason) for request in unprocessed], retries + 1
            retries += 1
            chunk = unprocessed

    def _start_key(self, organization_id: int, payload: dict[str, Any]) -> Item:
        sku, created_at = payload.get("sku"), payload.get("created_at")
        if not isinstance(sku, str) or not isinstance(created_at, str):
            raise InvalidArgument("page_token is not valid; start again without a page_token")
        # Built from the caller's organization, never from anything the token says.
        return {
            "organizationId": {"N": str(organization_id)},
            "created_at": {"S": created_at},
            "PK": {"S": product_pk(organization_id, sku)},
            "SK": {"S": METADATA},
        }


# Items


def _plan_write(
    organization_id: int, product: ProductInput, current: Item | None, now: datetime
) -> _Plan | None:
    """What writing `product` over `current` puts; None when the content is already stored."""
    content_hash = _content_hash(product)
    if current is not None and current.get("content_hash", {}).get("S") == content_hash:
        return None
    pk = product_pk(organization_id, product.sku)
    stamp = format_timestamp(now)
    side_items: list[Item] = []
    owner_listing = current.get(OWNER_LISTING, {}) if current else {}
    if product.marketplace:
        listing = _listing_fields(product, stamp)
        if owner_listing and _text(owner_listing["M"], "marketplace") != product.marketplace:
            side_items.append(
                {"PK": {"S": pk}, "SK": {"S": LISTING_PREFIX + product.marketplace}, **listing}
            )
        else:
            owner_listing = {"M": listing}
    first_point = current.get(FIRST_POINT, {}) if current else {}
    price_point_key = None
    if product.price is not None and (current is None or not (first_point or "price" in current)):
        # A price on a product without one, and without a first point: METADATA holds the
        # point, at created_at unless the product was stored without a price first.
        first_point = {
            "M": _compact(
                {
                    "price": {"N": _number(product.price)},
                    "currency": {"S": product.currency},
                    "recorded_at": {"S": stamp} if current else {},
                }
            )
        }
    elif product.price is not None and _price_changed(product, current):
        price_point_key = (pk, f"{PRICE_PREFIX}{stamp}#{uuid.uuid4().hex[:12]}")
        side_items.append(
            _compact(
                {
                    "PK": {"S": pk},
                    "SK": {"S": price_point_key[1]},
                    "price": {"N": _number(product.price)},
                    "currency": {"S": product.currency},
                    "recorded_at": {"S": stamp},
                }
            )
        )
    version = int(current["version"]["N"]) if current else 0
    previous_sync = current.get("synced_at", {}).get("S", "") if current else ""
    product_item = _compact(
        {
            "PK": {"S": pk},
            "SK": {"S": METADATA},
            "organizationId": {"N": str(organization_id)},
            "sku": {"S": product.sku},
            "marketplace": {"S": product.marketplace},
            "title": {"S": product.title},
            "description": {"S": product.description},
            "brand": {"S": product.brand},
            "category": {"S": product.category},
            "price": {"N": _number(product.price)} if product.price is not None else {},
            "currency": {"S": product.currency},
            "inventory_quantity": {"N": str(product.inventory_quantity)},
            "image_url": {"S": product.image_url},
            "asin": {"S": product.asin},
            "created_at": current["created_at"] if current else {"S": stamp},
            "updated_at": {"S": stamp},
            "synced_at": {"S": stamp if product.marketplace else previous_sync},
            OWNER_LISTING: owner_listing,
            FIRST_POINT: first_point,
            "version": {"N": str(version + 1)},
            "content_hash": {"S": content_hash},
        }
    )
    return _Plan(
        sku=product.sku,
        product_item=product_item,
        side_items=side_items,
        price_point_key=price_point_key,
        expected_version=version if current else None,
        conditional=not _past_every_claim(current),
    )


def _past_every_claim(current: Item | None) -> bool:
    """Whether the stored product has an owner's listing and a first price, so that no write
    can claim either any more. A product stored with a price before first points existed has
    its first point among the PRICE# items: that claim too is made."""
    return (
        current is not None
        and OWNER_LISTING in current
        and (FIRST_POINT in current or "price" in current)
    )


def _listing_fields(product: ProductInput, stamp: str) -> Item:
    """A listing's attributes: METADATA's owner listing holds them as a map, a LISTING# item
    beside its keys."""
    return _compact(
        {
            "marketplace": {"S": product.marketplace},
            "price": {"N": _number(product.price)} if product.price is not None else {},
            "currency": {"S": product.currency},
            "inventory_quantity": {"N": str(product.inventory_quantity)},
            "external_id": {"S": product.external_id},
            "status": {"S": product.listing_status},
            "synced_at": {"S": stamp},
        }
    )


def _number(price: Decimal) -> str:
    """Fixed-point text: "100", never "1E+2"."""
    return format(price, "f")


def _compact(item: Item) -> Item:
    """Leave out empty values: absent reads back as empty, and every server accepts it."""
    return {name: value for name, value in item.items() if value and next(iter(value.values()))}


def _price_changed(product: ProductInput, current: Item | None) -> bool:
    if current is None or "price" not in current:
        return True
    stored = Decimal(current["price"]["N"])
    return stored != product.price or current.get("currency", {}).get("S", "") != product.currency


def _content_hash(product: ProductInput) -> str:
    content = asdict(product) | {"price": format_price(product.price)}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_size(plan: _Plan) -> None:
    for item in (plan.product_item, *plan.side_items):
        if item_size(item) > MAX_ITEM_BYTES:
            raise InvalidArgument(
                f"product {plan.sku} is too large to store; shorten description or title"
            )


def _text(item: Item, name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _owner(item: Item) -> str:
    """The marketplace whose listing METADATA holds; empty when it holds none."""
    return _text(item[OWNER_LISTING]["M"], "marketplace") if OWNER_LISTING in item else ""


def _price(item: Item) -> Decimal | None:
    return normalize_price(Decimal(item["price"]["N"])) if "price" in item else None


def _point(item: Item, created_at: str = "") -> PricePoint:
    """A PRICE# item, or METADATA's first point, recorded at created_at unless it says."""
    return PricePoint(
        price=normalize_price(Decimal(item["price"]["N"])),
        currency=_text(item, "currency"),
        recorded_at=parse_timestamp(_text(item, "recorded_at") or created_at),
    )


def _product_from_item(item: Item, listings: tuple[Listing, ...]) -> Product:
    synced_at = _text(item, "synced_at")
    return Product(
        sku=_text(item, "sku"),
        marketplace=_text(item, "marketplace"),
        title=_text(item, "title"),
        description=_text(item, "description"),
        brand=_text(item, "brand"),
        category=_text(item, "category"),
        price=_price(item),
        currency=_text(item, "currency"),
        inventory_quantity=int(item["inventory_quantity"]["N"]),
        image_url=_text(item, "image_url"),
        asin=_text(item, "asin"),
        created_at=parse_timestamp(_text(item, "created_at")),
        updated_at=parse_timestamp(_text(item, "updated_at")),
        synced_at=parse_timestamp(synced_at) if synced_at else None,
        listings=listings,
    )


def _listings(product: Item, listing_items: Iterable[Item]) -> tuple[Listing, ...]:
    """A product's listings: the owner's from METADATA, the others' from their LISTING# items
    (the last given for a marketplace). An owner's LISTING# item is a leftover of the earlier
    layout, older than METADATA's."""
    by_marketplace = {_text(item, "marketplace"): item for item in listing_items}
    if OWNER_LISTING in product:
        by_marketplace[_owner(product)] = product[OWNER_LISTING]["M"]
    return tuple(
        sorted((_listing_from_item(item) for item in by_marketplace.values()), key=_listing_order)
    )


def _listing_from_item(item: Item) -> Listing:
    return Listing(
        marketplace=_text(item, "marketplace"),
        price=_price(item),
        currency=_text(item, "currency"),
        inventory_quantity=int(item["inventory_quantity"]["N"]),
        external_id=_text(item, "external_id"),
        status=_text(item, "status"),
        synced_at=parse_timestamp(_text(item, "synced_at")),
    )


def _listed_on(listings: dict[str, tuple[Listing, ...]], item: Item, marketplace: str) -> bool:
    return any(listing.marketplace == marketplace for listing in listings[item["PK"]["S"]])


def _listing_order(listing: Listing) -> int:
    return MARKETPLACES.index(listing.marketplace)


def _request_key(request: dict[str, Any]) -> Key:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
    else:
        item = request["DeleteRequest"]["Key"]
    return item["PK"]["S"], item["SK"]["S"]


def _take_distinct(queue: deque[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to 25 requests with distinct keys, as BatchWriteItem demands."""
    chunk: list[dict[str, Any]] = []
    keys: set[Key] = set()
    while queue and len(chunk) < MAX_BATCH_WRITE_ITEMS:
        key = _request_key(queue[0])
        if key in keys:
            break
        keys.add(key)
        chunk.append(queue.popleft())
    return chunk


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, ClientError) and error_code(exc) in THROTTLING_CODES:
        return "DynamoDB kept throttling the write; this product was not stored"
    if is_retryable(exc):
        return "the product store was unavailable; this product was not stored"
    return "the product store refused this write; this product was not stored"
