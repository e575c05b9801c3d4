"""Amazon's side of the sandbox: Login with Amazon and the SP-API operations a sync uses."""

from __future__ import annotations

import base64
import gzip
import random
import re
from datetime import UTC, datetime

from dev.sandbox.catalogue import (
    CATEGORIES,
    AmazonListing,
    amazon_asin_index,
    amazon_catalogue,
)
from dev.sandbox.http import (
    Answer,
    Interrupt,
    Request,
    Route,
    apply_faults,
    json_answer,
    route,
)
from dev.sandbox.state import SandboxState

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
_RATE_LIMITS = {
    "createReport": "0.0167",
    "getReport": "2.0",
    "getReportDocument": "0.0167",
    "searchCatalogItems": "2.0",
    "getInventorySummaries": "2.0",
    "searchListingsItems": "5.0",
}
REPORT_COLUMNS = (
    "item-name",
    "item-description",
    "listing-id",
    "seller-sku",
    "price",
    "quantity",
    "open-date",
    "image-url",
    "item-is-marketplace",
    "product-id-type",
    "zshop-shipping-fee",
    "item-note",
    "item-condition",
    "asin1",
    "asin2",
    "asin3",
    "will-ship-internationally",
    "expedited-shipping",
    "product-id",
    "bid-for-featured-placement",
    "add-delete",
    "pending-quantity",
    "fulfillment-channel",
    "merchant-shipping-group",
    "status",
)
CATALOG_PAGE_MAX = 20
INVENTORY_PAGE_SIZE = 50
LISTINGS_SKU_CAP = 1000


def _errors(status: int, code: str, message: str, details: str = "") -> Answer:
    return json_answer(status, {"errors": [{"code": code, "message": message, "details": details}]})


def _throttled() -> Answer:
    # Amazon sends no Retry-After with a 429.
    return _errors(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")


def _authorize(state: SandboxState, request: Request, operation: str) -> str:
    grant = state.use_token(request.header("x-amz-access-token") or "")
    if grant is None:
        raise Interrupt(
            _errors(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided is revoked, malformed or invalid.",
            )
        )
    account, expired = grant
    apply_faults(state, account, operation, _throttled)
    if expired:
        raise Interrupt(
            _errors(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided has expired.",
            )
        )
    return account


def _ok(operation: str, document: object, status: int = 200) -> Answer:
    return json_answer(status, document, {"x-amzn-RateLimit-Limit": _RATE_LIMITS[operation]})


def _require_marketplace(request: Request) -> str:
    marketplace_id = request.param("marketplaceIds") or request.param("granularityId")
    if not marketplace_id:
        raise Interrupt(_errors(400, "InvalidInput", "marketplaceIds is required."))
    return marketplace_id.split(",")[0]


def lwa_token(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    form = request.form()
    refresh_token = form.get("refresh_token", "")
    apply_faults(
        state,
        refresh_token,
        "lwaToken",
        lambda: json_answer(429, {"error": "slow_down", "error_description": "Too many requests"}),
    )
    if form.get("grant_type") != "refresh_token":
        return json_answer(
            400, {"error": "unsupported_grant_type", "error_description": "Invalid grant type"}
        )
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not client_secret or "invalid" in client_id + client_secret:
        return json_answer(
            401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        )
    if not refresh_token or "revoked" in refresh_token:
        return json_answer(
            400,
            {
                "error": "invalid_grant",
                "error_description": "The request has an invalid grant parameter : refresh_token",
            },
        )
    return json_answer(
        200,
        {
            "access_token": state.issue_token(refresh_token, "Atza"),
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": 3600,
        },
    )


def create_report(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "createReport")
    specification = request.json()
    if specification.get("reportType") != REPORT_TYPE or not specification.get("marketplaceIds"):
        return _errors(400, "InvalidInput", f"Give reportType {REPORT_TYPE} and marketplaceIds.")
    return _ok("createReport", {"reportId": state.create_report(account)}, status=202)


def get_report(state: SandboxState, request: Request, match: re.Match[str]) -> Answer:
    account = _authorize(state, request, "getReport")
    report_id = match["report_id"]
    polls = state.poll_report(account, report_id)
    if polls is None:
        return _errors(404, "NotFound", f"Report {report_id} not found.")
    status = ("IN_QUEUE", "IN_PROGRESS")[polls - 1] if polls <= 2 else None
    report: dict[str, object] = {
        "reportId": report_id,
        "reportType": REPORT_TYPE,
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "createdTime": datetime.now(UTC).isoformat(),
        "processingStatus": status or state.faults(account).report_outcome,
    }
    if report["processingStatus"] == "DONE":
        report["reportDocumentId"] = state.document_id(account, report_id)
    return _ok("getReport", report)


def get_report_document(state: SandboxState, request: Request, match: re.Match[str]) -> Answer:
    account = _authorize(state, request, "getReportDocument")
    document_id = match["document_id"]
    if state.document_account(document_id) != account:
        return _errors(404, "NotFound", f"Report document {document_id} not found.")
    return _ok(
        "getReportDocument",
        {
            "reportDocumentId": document_id,
            "url": f"{request.base_url}/_sandbox/report-documents/{document_id}",
            "compressionAlgorithm": "GZIP",
        },
    )


def download_report_document(state: SandboxState, request: Request, match: re.Match[str]) -> Answer:
    account = state.document_account(match["document_id"])
    if account is None:
        return Answer(403, b"<Error><Code>AccessDenied</Code></Error>")
    apply_faults(state, account, "downloadReportDocument", lambda: Answer(503, b"SlowDown"))
    return Answer(
        200,
        gzip.compress(
            listings_report(account, state.faults(account).bad_price_every).encode("cp1252")
        ),
        {"Content-Type": "application/octet-stream"},
    )


def report_columns(refresh_token: str) -> list[str]:
    """The report's columns in an order of the account's own, as column order varies by account."""
    columns = list(REPORT_COLUMNS)
    random.Random(f"columns:{refresh_token}").shuffle(columns)  # noqa: S311 - not a secret
    return columns


def listings_report(refresh_token: str, bad_price_every: int | None = None) -> str:
    """The tab-separated report; every `bad_price_every`th row gets a price nobody can parse."""
    columns = report_columns(refresh_token)
    lines = ["\t".join(columns)]
    for index, listing in enumerate(amazon_catalogue(refresh_token)):
        row = _report_row(listing)
        if bad_price_every and (index + 1) % bad_price_every == 0:
            row["price"] = "N/A"
        lines.append("\t".join(row.get(column, "") for column in columns))
    return "\r\n".join(lines) + "\r\n"


def _report_row(listing: AmazonListing) -> dict[str, str]:
    return {
        "item-name": listing.title,
        "item-description": listing.description,
        "listing-id": listing.listing_id,
        "seller-sku": listing.sku,
        "price": listing.price,
        # Amazon leaves the quantity empty for listings it fulfils itself.
        "quantity": "" if listing.is_fba else str(listing.quantity),
        "open-date": "2024-03-01 10:00:00 PST",
        "item-is-marketplace": "y",
        "product-id-type": "1",
        "item-condition": "11",
        "asin1": listing.asin,
        "product-id": listing.asin,
        "add-delete": "",
        "pending-quantity": "0",
        "fulfillment-channel": listing.fulfillment_channel,
        "merchant-shipping-group": "Migrated Template",
        "status": listing.status,
    }


def _decode_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError as error:
        raise Interrupt(_errors(400, "InvalidInput", "The page token is invalid.")) from error


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _page_size(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.param(name)
    try:
        size = int(raw) if raw else default
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise Interrupt(_errors(400, "InvalidInput", f"{name} must be between 1 and {maximum}."))
    return size


def search_catalog_items(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "searchCatalogItems")
    marketplace_id = _require_marketplace(request)
    identifiers = [value for value in (request.param("identifiers") or "").split(",") if value]
    if request.param("identifiersType") != "ASIN" or not 1 <= len(identifiers) <= 20:
        return _errors(400, "InvalidInput", "Give 1 to 20 identifiers with identifiersType ASIN.")
    included = set((request.param("includedData") or "summaries").split(","))
    page_size = _page_size(request, "pageSize", 10, CATALOG_PAGE_MAX)
    offset = _decode_offset(request.param("pageToken"))
    known = amazon_asin_index(account)
    found = [known[asin] for asin in dict.fromkeys(identifiers) if asin in known]
    page = found[offset : offset + page_size]
    answer: dict[str, object] = {
        "numberOfResults": len(found),
        "pagination": {},
        "refinements": {"brands": [], "classifications": []},
        "items": [_catalog_item(listing, marketplace_id, included) for listing in page],
    }
    next_offset = state.faults(account).next_offset(
        "searchCatalogItems", offset, page_size, len(found)
    )
    if next_offset is not None:
        answer["pagination"] = {"nextToken": _encode_offset(next_offset)}
    return _ok("searchCatalogItems", answer)


def _catalog_item(
    listing: AmazonListing, marketplace_id: str, included: set[str]
) -> dict[str, object]:
    item: dict[str, object] = {"asin": listing.asin}
    if "summaries" in included:
        summary: dict[str, object] = {
            "marketplaceId": marketplace_id,
            "itemName": listing.title,
            "manufacturer": listing.brand or "Unknown",
        }
        if listing.brand:
            summary["brand"] = listing.brand
        if listing.category:
            summary["browseClassification"] = {
                "displayName": listing.category,
                "classificationId": str(CATEGORIES.index(listing.category) + 1_000_000),
            }
        item["summaries"] = [summary]
    if "images" in included:
        images = [
            {
                "variant": "PT01",
                "link": f"https://m.media-amazon.com/images/I/{listing.asin}-pt01.jpg",
                "height": 500,
                "width": 500,
            }
        ]
        if listing.main_image:
            images.append(
                {"variant": "MAIN", "link": listing.main_image, "height": 1000, "width": 1000}
            )
        item["images"] = [{"marketplaceId": marketplace_id, "images": images}]
    return item


def inventory_summaries(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "getInventorySummaries")
    marketplace_id = _require_marketplace(request)
    if request.param("granularityType") != "Marketplace":
        return _errors(400, "InvalidInput", "granularityType must be Marketplace.")
    details = request.param("details") == "true"
    fba = [listing for listing in amazon_catalogue(account) if listing.is_fba]
    offset = _decode_offset(request.param("nextToken"))
    page = fba[offset : offset + INVENTORY_PAGE_SIZE]
    answer: dict[str, object] = {
        "payload": {
            "granularity": {"granularityType": "Marketplace", "granularityId": marketplace_id},
            "inventorySummaries": [_inventory_summary(listing, details) for listing in page],
        }
    }
    next_offset = state.faults(account).next_offset(
        "getInventorySummaries", offset, INVENTORY_PAGE_SIZE, len(fba)
    )
    if next_offset is not None:
        answer["pagination"] = {"nextToken": _encode_offset(next_offset)}
    return _ok("getInventorySummaries", answer)


def _inventory_summary(listing: AmazonListing, details: bool) -> dict[str, object]:
    summary: dict[str, object] = {
        "asin": listing.asin,
        "fnSku": "X00" + listing.listing_id[:7],
        "sellerSku": listing.sku,
        "condition": "NewItem",
        "lastUpdatedTime": "2024-03-01T10:00:00Z",
        "productName": listing.title,
        "totalQuantity": listing.fulfillable_quantity + 3,
    }
    if details:
        summary["inventoryDetails"] = {
            "fulfillableQuantity": listing.fulfillable_quantity,
            "inboundWorkingQuantity": 0,
            "inboundShippedQuantity": 0,
            "inboundReceivingQuantity": 0,
            "reservedQuantity": {"totalReservedQuantity": 3},
            "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0},
        }
    return summary


def search_listings_items(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    account = _authorize(state, request, "searchListingsItems")
    marketplace_id = _require_marketplace(request)
    page_size = _page_size(request, "pageSize", 10, 20)
    offset = _decode_offset(request.param("pageToken"))
    # Amazon pages through at most 1000 SKUs this way; the report is the way to get them all.
    listings = amazon_catalogue(account)[:LISTINGS_SKU_CAP]
    page = listings[offset : offset + page_size]
    answer: dict[str, object] = {
        "numberOfResults": len(listings),
        "items": [_listings_item(listing, marketplace_id) for listing in page],
    }
    if offset + page_size < len(listings):
        answer["pagination"] = {"nextToken": _encode_offset(offset + page_size)}
    return _ok("searchListingsItems", answer)


def _listings_item(listing: AmazonListing, marketplace_id: str) -> dict[str, object]:
    summary: dict[str, object] = {
        "marketplaceId": marketplace_id,
        "asin": listing.asin,
        "productType": "PRODUCT",
        "itemName": listing.title,
        "status": ["BUYABLE"] if listing.status == "Active" else [],
        "createdDate": "2024-03-01T10:00:00Z",
        "lastUpdatedDate": "2024-03-01T10:00:00Z",
    }
    if listing.main_image:
        summary["mainImage"] = {"link": listing.main_image, "height": 1000, "width": 1000}
    channel = "AMAZON_NA" if listing.is_fba else "DEFAULT"
    quantity = listing.fulfillable_quantity if listing.is_fba else listing.quantity
    return {
        "sku": listing.sku,
        "summaries": [summary],
        "attributes": {"brand": [{"value": listing.brand}]} if listing.brand else {},
        "offers": [{"price": {"currencyCode": "USD", "amount": listing.price}}],
        "fulfillmentAvailability": [{"fulfillmentChannelCode": channel, "quantity": quantity}],
    }


ROUTES: tuple[Route, ...] = (
    route("POST", r"/auth/o2/token", lwa_token),
    route("POST", r"/reports/2021-06-30/reports", create_report),
    route("GET", r"/reports/2021-06-30/reports/(?P<report_id>[^/]+)", get_report),
    route("GET", r"/reports/2021-06-30/documents/(?P<document_id>[^/]+)", get_report_document),
    route("GET", r"/_sandbox/report-documents/(?P<document_id>[^/]+)", download_report_document),
    route("GET", r"/catalog/2022-04-01/items", search_catalog_items),
    route("GET", r"/fba/inventory/v1/summaries", inventory_summaries),
    route("GET", r"/listings/2021-08-01/items/(?P<seller_id>[^/]+)", search_listings_items),
)
