"""Reading the downloaded listings report: a gzip or plain TSV in the document's encoding,
unquoted, its columns found by name (they vary by seller and move around)."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.amazon.reports import ReportDocument
from services.sync.marketplaces.records import MarketplaceError, SkippedItem

REQUIRED_COLUMNS = ("seller-sku", "price")


@dataclass(frozen=True)
class ReportRow:
    """A line of the listings report (the header is line 1), its values by column name."""

    line: int
    fields: dict[str, str]


def rows(
    raw: IO[bytes], document: ReportDocument, encoding: str
) -> Iterator[ReportRow | SkippedItem]:
    """The report's rows by column name (columns vary by account and move around), and a
    skipped item for each line that cannot be read."""
    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw) if document.compression == "GZIP" else raw
    # cp1252 leaves five bytes undefined: one in a title costs a character, not the sync.
    text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
    try:
        # Amazon does not quote fields, and descriptions carry bare quotes (12" ruler).
        reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise MarketplaceError(
                AMAZON, f"Amazon's listings report has no {', '.join(missing)} column"
            )
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # The reader goes on with the next line.
                yield SkippedItem(
                    "", f"Line {reader.line_num} of Amazon's listings report is unreadable: {error}"
                )
                continue
            if values:
                yield ReportRow(reader.line_num, dict(zip(header, values, strict=False)))
    except (OSError, EOFError, zlib.error) as error:
        raise MarketplaceError(
            AMAZON,
            f"Amazon's listings report arrived damaged ({error}); try again later",
            retryable=True,
        ) from error
    finally:
        text.detach()
