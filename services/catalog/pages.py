"""Pages of an organization's products, newest first, read through GSI1, with signed page tokens.

GSI1 holds keys only (see tables.py): a page queries the index, then reads its products'
METADATA items and their other marketplaces' LISTING# items by key, with BatchGetItem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketsync.backoff import Backoff
from marketsync.errors import InvalidArgument, Unavailable
from marketsync.marketplaces import MARKETPLACES
from marketsync.page_tokens import PageTokenSigner
from services.catalog.domain import Listing, ProductPage
from services.catalog.dynamo import BatchCalls, Item, Key, dynamodb_errors
from services.catalog.items import (
    LISTING_PREFIX,
    METADATA,
    owner_of,
    product_from_item,
    product_listings,
    product_pk,
    sku_of,
)
from services.catalog.tables import GSI1

if TYPE_CHECKING:
    # Type stubs only (a dev dependency): the running code gets boto3's client and plain dicts.
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

# With a marketplace filter most products read may be skipped, so read in full pages.
FILTERED_QUERY_LIMIT = 100
# A filtered page reads at most this many products; if it fills no page by then, it answers
# the products it found with a token to go on, so no request scans a whole organization.
MAX_SCANNED_PER_PAGE = 1000
_LIST_QUERY = "catalog.products"


class ProductPages:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        page_token_key: bytes,
        batch: BatchCalls,
        backoff: Backoff,
    ) -> None:
        self._client = client
        self._table = table_name
        self._tokens = PageTokenSigner(page_token_key)
        self._batch = batch
        self._backoff = backoff

    def page(
        self, organization_id: int, page_size: int, page_token: str, marketplace: str
    ) -> ProductPage:
        """Newest first; with a marketplace, only products that have a listing there. The
        caller has checked the page size and the marketplace."""
        binding = {
            "query": _LIST_QUERY,
            "organization_id": organization_id,
            "marketplace": marketplace,
        }
        start_key = None
        if page_token:
            start_key = _start_key(organization_id, self._tokens.decode(page_token, binding))
        # One product past the page tells whether another page exists, so the last page
        # carries no token even where DynamoDB returns a LastEvaluatedKey after it.
        found: list[Item] = []
        listings: dict[str, tuple[Listing, ...]] = {}
        read, last_read = 0, None
        while len(found) <= page_size:
            needed = page_size + 1 - len(found)
            query: QueryInputTypeDef = {
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
                {"sku": sku_of(resume["PK"]["S"]), "created_at": resume["created_at"]["S"]},
                binding,
            )
            if resume
            else ""
        )
        products = [product_from_item(item, listings[item["PK"]["S"]]) for item in page]
        return ProductPage(products=products, next_page_token=next_token)

    def _whole_products(self, entries: list[Item]) -> list[Item]:
        """The METADATA items of GSI1 entries, in their order. GSI1 holds keys only (see
        tables.py), so they are read by key, eventually consistent like the index itself; one
        deleted since the index was read is left out. A table made when GSI1 projected every
        attribute has them whole already."""
        if not entries or "version" in entries[0]:
            return entries
        keys = [(entry["PK"]["S"], entry["SK"]["S"]) for entry in entries]
        found = self._read(keys)
        return [found[key] for key in keys if key in found]

    def _listings_of(self, items: list[Item]) -> dict[str, tuple[Listing, ...]]:
        """Listings of products by PK: the owner's from METADATA, every other marketplace's
        key read in as few BatchGetItem calls as a page allows (one for 100 products). A set of
        those marketplaces on METADATA would not save the call and could be lost: BatchWriteItem
        puts replace the whole item."""
        keys = [
            (item["PK"]["S"], LISTING_PREFIX + marketplace)
            for item in items
            for marketplace in MARKETPLACES
            if marketplace != owner_of(item)
        ]
        others: dict[str, list[Item]] = {}
        for (pk, _sk), listing_item in self._read(keys).items():
            others.setdefault(pk, []).append(listing_item)
        return {
            item["PK"]["S"]: product_listings(item, others.get(item["PK"]["S"], []))
            for item in items
        }

    def _read(self, keys: list[Key]) -> dict[Key, Item]:
        """Items by key, eventually consistent; Unavailable unless every key was read."""
        found, unread, _ = self._batch.get(keys, self._backoff.deadline(), consistent=False)
        if unread:
            raise Unavailable("the product store is busy; retry in a few seconds")
        return found


def _start_key(organization_id: int, payload: dict[str, Any]) -> Item:
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


def _listed_on(listings: dict[str, tuple[Listing, ...]], item: Item, marketplace: str) -> bool:
    return any(listing.marketplace == marketplace for listing in listings[item["PK"]["S"]])
