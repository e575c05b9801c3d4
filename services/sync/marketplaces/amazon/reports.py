"""The listings report's lifecycle: create it, poll it until Amazon is done, fetch where its
document is, and download the document to a file."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import IO

import httpx
from sp_api.api import Reports

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.calls import REQUEST_TIMEOUT_SECONDS, payload, sp_api_call
from services.sync.marketplaces.amazon.errors import translating_failures
from services.sync.marketplaces.pacing import Caller, Transient
from services.sync.marketplaces.records import MarketplaceError, tls_context
from services.sync.metrics import count_request

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
REPORT_DEADLINE_SECONDS = 3600.0
# Small reports are done in seconds, a large one takes minutes: poll soon, then less often.
REPORT_POLL_PAUSES_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
REPORT_POLL_LONGEST_PAUSE_SECONDS = 30.0


@dataclass(frozen=True)
class ReportDocument:
    url: str
    compression: str | None


async def finished_report(
    reports: Reports, caller: Caller, marketplace_id: str
) -> ReportDocument | None:
    """Creates the listings report and waits for it; None when Amazon cancelled it.

    `caller` makes the calls through `reports`; its pacer's clock and sleep time the polls.
    """
    created = await sp_api_call(
        caller,
        "createReport",
        lambda: payload(
            reports.create_report(reportType=REPORT_TYPE, marketplaceIds=[marketplace_id]),
            "reportId",
        ),
    )
    report_id = created["reportId"]
    pacer = caller.pacer
    deadline = pacer.clock() + REPORT_DEADLINE_SECONDS
    pauses = report_poll_pauses()
    while True:
        report = await sp_api_call(
            caller,
            "getReport",
            lambda: payload(reports.get_report(report_id), "processingStatus"),
        )
        status = report["processingStatus"]
        if status == "DONE":
            break
        if status == "CANCELLED":
            # Amazon cancels a report that has no data: the seller lists nothing.
            return None
        if status == "FATAL":
            raise MarketplaceError(
                AMAZON,
                f"Amazon report ended FATAL (report {report_id}): try again later",
                retryable=True,
            )
        pause = next(pauses)
        if pacer.clock() + pause > deadline:
            raise MarketplaceError(
                AMAZON,
                f"Amazon did not finish report {report_id} within an hour; try again later",
                retryable=True,
            )
        await pacer.sleep(pause)
    document_id = report.get("reportDocumentId")
    if not document_id:
        raise MarketplaceError(
            AMAZON,
            f"Amazon finished report {report_id} without a document",
            retryable=True,
        )
    document = await sp_api_call(
        caller,
        "getReportDocument",
        lambda: payload(reports.get_report_document(document_id), "url"),
    )
    return ReportDocument(document["url"], document.get("compressionAlgorithm"))


def report_poll_pauses() -> Iterator[float]:
    """The pauses between polls of a report, growing to one every 30 seconds."""
    yield from REPORT_POLL_PAUSES_SECONDS
    yield from repeat(REPORT_POLL_LONGEST_PAUSE_SECONDS)


async def download(caller: Caller, document: ReportDocument, raw: IO[bytes]) -> str:
    """Stores the document in `raw`, paced and retried by `caller`, and says its character
    encoding."""
    return await caller.call(
        "downloadReportDocument",
        lambda: translating_failures(
            "downloadReportDocument", lambda: _download_once(document, raw)
        ),
    )


async def _download_once(document: ReportDocument, raw: IO[bytes]) -> str:
    raw.seek(0)
    raw.truncate()
    async with (
        httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, verify=tls_context()) as client,
        client.stream("GET", document.url) as response,
    ):
        count_request(AMAZON, "downloadReportDocument", response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            raise Transient(f"failing to serve the report (HTTP {response.status_code})")
        if response.status_code != 200:
            raise MarketplaceError(
                AMAZON, f"Amazon refused the report download (HTTP {response.status_code})"
            )
        async for chunk in response.aiter_bytes():
            raw.write(chunk)
        return _known_encoding(response.charset_encoding)


def _known_encoding(charset: str | None) -> str:
    # Amazon serves North American reports in cp1252 without saying so.
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "cp1252"
