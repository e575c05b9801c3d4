"""FBA inventory: the fulfillable quantity of each FBA listing, read from every page of the
inventory summaries while the report is still being made."""

from __future__ import annotations

from functools import partial

from sp_api.api import Inventories
from sp_api.base import ApiResponse

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.calls import dicts, sp_api_call, with_payload
from services.sync.marketplaces.amazon.mapping import Listing
from services.sync.marketplaces.pacing import Caller, PageCursors
from services.sync.marketplaces.records import MAX_QUANTITY, SkippedItem, parse_quantity, shown


class FbaStock:
    """Fulfillable FBA quantity per SKU (or why it cannot be read), gathered while the report
    is still being made: every SKU the inventory names until the report says which listings
    are FBA, then only those."""

    def __init__(self) -> None:
        self._quantities: dict[str, int | SkippedItem] = {}
        self._fba_skus: set[str] | None = None

    def add(self, sku: str, quantity: int | SkippedItem) -> None:
        if self._fba_skus is None or sku in self._fba_skus:
            self._quantities[sku] = quantity

    def keep_only(self, fba_skus: set[str]) -> None:
        self._fba_skus = fba_skus
        self._quantities = {
            sku: quantity for sku, quantity in self._quantities.items() if sku in fba_skus
        }

    def quantity(self, sku: str) -> int | SkippedItem:
        return self._quantities.get(sku, 0)


async def read_fba_stock(
    inventories: Inventories, caller: Caller, marketplace_id: str, fba: FbaStock
) -> None:
    """Fulfillable FBA quantity per SKU, from every page of the inventory summaries."""
    tokens = PageCursors(
        AMAZON, "Amazon kept returning the same page of FBA inventory; try again later"
    )

    def summaries(paging: dict[str, str]) -> ApiResponse:
        return with_payload(
            inventories.get_inventory_summary_marketplace(
                details=True, marketplaceIds=[marketplace_id], **paging
            ),
            "inventorySummaries",
            list,
        )

    next_token = ""
    while True:
        paging = {"nextToken": next_token} if next_token else {}
        response = await sp_api_call(caller, "getInventorySummaries", partial(summaries, paging))
        for summary in dicts(response.payload["inventorySummaries"]):
            sku = summary.get("sellerSku")
            if isinstance(sku, str):
                fba.add(sku, _fulfillable(sku, summary.get("inventoryDetails")))
        next_token = tokens.follow(response.next_token)
        if not next_token:
            return


def stock_of(listing: Listing, fba: FbaStock) -> int | SkippedItem:
    """The listing's stock: from the report, or for an FBA listing from FBA inventory."""
    return fba.quantity(listing.sku) if listing.quantity is None else listing.quantity


def _fulfillable(sku: str, details: object) -> int | SkippedItem:
    raw = details.get("fulfillableQuantity") if isinstance(details, dict) else None
    quantity = 0 if raw is None else parse_quantity(raw)
    if quantity is None:
        return SkippedItem(
            sku,
            f"Amazon's FBA inventory gives the fulfillable quantity {shown(raw)}, not a whole "
            f"number from 0 to {MAX_QUANTITY}",
        )
    return quantity
