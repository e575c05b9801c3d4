"""Enrichment from Catalog Items: brand, category and main image per ASIN, looked up 20 ASINs a
call, and reused from the last sync for a SKU whose ASIN has not changed."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from sp_api.api import CatalogItems
from sp_api.base import ApiResponse

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.calls import dicts, sp_api_call, with_payload
from services.sync.marketplaces.amazon.mapping import Listing
from services.sync.marketplaces.pacing import Caller, PageCursors
from services.sync.marketplaces.records import Enrichment

CATALOG_IDENTIFIERS_PER_CALL = 20


async def catalog_enrichment(
    catalog: CatalogItems, caller: Caller, marketplace_id: str, asins: set[str]
) -> dict[str, Enrichment]:
    """What Catalog Items says of each ASIN, by ASIN."""

    def items(chunk: list[str], paging: dict[str, str]) -> ApiResponse:
        return with_payload(
            catalog.search_catalog_items(
                identifiers=",".join(chunk),
                identifiersType="ASIN",
                includedData="summaries,images",
                marketplaceIds=[marketplace_id],
                pageSize=CATALOG_IDENTIFIERS_PER_CALL,
                **paging,
            ),
            "items",
            list,
        )

    found: dict[str, Enrichment] = {}
    wanted = sorted(asin for asin in asins if asin)
    for start in range(0, len(wanted), CATALOG_IDENTIFIERS_PER_CALL):
        chunk = wanted[start : start + CATALOG_IDENTIFIERS_PER_CALL]
        tokens = PageCursors(
            AMAZON, "Amazon kept returning the same page of catalog items; try again later"
        )
        page_token = ""
        while True:
            paging = {"pageToken": page_token} if page_token else {}
            response = await sp_api_call(
                caller, "searchCatalogItems", partial(items, chunk, paging)
            )
            for item in dicts(response.payload["items"]):
                asin = item.get("asin")
                if isinstance(asin, str):
                    found[asin] = _enrichment_of(item, marketplace_id)
            page_token = tokens.follow(response.next_token)
            if not page_token:
                break
    return found


def unchanged_enrichment(
    listings: list[Listing], stored: Mapping[str, tuple[str, Enrichment]]
) -> dict[str, Enrichment]:
    """What was stored for the SKUs whose ASIN is still the same, by SKU."""
    reusable = {}
    for listing in listings:
        asin, enrichment = stored.get(listing.sku, ("", Enrichment()))
        if enrichment and asin == listing.asin:
            reusable[listing.sku] = enrichment
    return reusable


def _enrichment_of(item: dict[str, Any], marketplace_id: str) -> Enrichment:
    # Enrichment only adds to a product: a value that is not text is left out, not fatal.
    summary = _for_marketplace(dicts(item.get("summaries")), marketplace_id)
    image_sets = _for_marketplace(dicts(item.get("images")), marketplace_id)
    main = next(
        (image for image in dicts(image_sets.get("images")) if image.get("variant") == "MAIN"),
        {},
    )
    classification = summary.get("browseClassification")
    return Enrichment(
        brand=_text(summary.get("brand")),
        category=_text(
            classification.get("displayName") if isinstance(classification, dict) else None
        ),
        image_url=_text(main.get("link")),
    )


def _for_marketplace(entries: list[dict[str, Any]], marketplace_id: str) -> dict[str, Any]:
    return next(
        (entry for entry in entries if entry.get("marketplaceId") == marketplace_id),
        entries[0] if entries else {},
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
