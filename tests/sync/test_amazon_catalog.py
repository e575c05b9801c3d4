"""The Amazon client against the sandbox: a whole catalogue, and every way a sync can go wrong."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import IO, Any

import pytest

from dev.sandbox import SandboxHandle
from dev.sandbox.catalogue import amazon_catalogue
from services.sync.marketplaces import (
    AMAZON_RATES,
    DEFAULT_RATES,
    AmazonCatalog,
    AmazonEndpoints,
    CatalogPage,
    MarketplaceError,
    Pacer,
    Rate,
)
from services.sync.marketplaces.amazon.reports import REPORT_POLL_PAUSES_SECONDS, report_poll_pauses
from services.sync.marketplaces.amazon.tokens import AccessTokenCache
from services.sync.marketplaces.records import Enrichment, StoredEnrichment, nothing_stored
from tests.sync.conftest import (
    FAST_BACKOFF,
    call_counts,
    collect,
    expected_amazon,
    joined,
    read,
    set_faults,
    timeline,
    unique_account,
)


def catalog_of(
    refresh_token: str,
    endpoints: AmazonEndpoints,
    pacer: Pacer,
    *,
    client_id: str = "amzn1.application-oa2-client.demo",
    stored_enrichment: StoredEnrichment = nothing_stored,
) -> AmazonCatalog:
    credentials = {
        "refresh_token": refresh_token,
        "lwa_app_id": client_id,
        "lwa_client_secret": "amzn1.oa2-cs.v1.secret",
        "seller_id": "A1SELLER",
        "marketplace_id": "ATVPDKIKX0DER",
    }
    return AmazonCatalog(
        credentials,
        endpoints,
        pacer,
        account=refresh_token,
        stored_enrichment=stored_enrichment,
        backoff=FAST_BACKOFF,
    )


def test_a_catalogue_of_two_thousand_arrives_complete_and_right(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("complete", 2000)
    pages = read(catalog_of(seller, amazon_endpoints, pacer).pages())

    products, skipped = joined(pages)
    assert skipped == []
    assert products == expected_amazon(seller)
    assert all(0 < len(page.products) <= 100 for page in pages)
    assert {page.items_total for page in pages} == {2000}
    # The mix the catalogue is built to exercise really came through.
    assert any(
        product.title.endswith(tuple("0123456789")) and "\u2122" in product.title
        for product in products.values()
    )
    assert {product.status for product in products.values()} == {"Active", "Inactive"}
    calls = call_counts(sandbox, seller)
    assert calls["lwaToken"] == 1
    assert calls["createReport"] == 1
    assert calls["getReportDocument"] == 1
    distinct_asins = len({listing.asin for listing in amazon_catalogue(seller)})
    assert distinct_asins / 20 <= calls["searchCatalogItems"] <= 2000 / 20 + 20


def test_fba_listings_take_their_stock_from_fba_inventory(
    amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("fba", 400)
    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    for listing in amazon_catalogue(seller):
        expected = listing.fulfillable_quantity if listing.is_fba else listing.quantity
        assert products[listing.sku].inventory_quantity == expected


def test_throttling_every_few_calls_still_completes(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("throttled", 600)
    set_faults(sandbox, seller, throttle_every={"*": 3})

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)
    assert call_counts(sandbox, seller)["searchCatalogItems"] >= 3


def test_throttling_that_never_ends_fails_after_bounded_attempts(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("throttled-always", 100)
    set_faults(sandbox, seller, throttle_every={"searchCatalogItems": 1})

    with pytest.raises(MarketplaceError) as failure:
        collect(catalog_of(seller, amazon_endpoints, pacer).pages())
    assert failure.value.message == "Amazon kept throttling after 6 attempts; try again later"
    assert failure.value.retryable
    assert call_counts(sandbox, seller)["searchCatalogItems"] == 6


def test_a_cancelled_report_means_an_empty_catalogue(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("cancelled", 100)
    set_faults(sandbox, seller, report_outcome="CANCELLED")

    assert read(catalog_of(seller, amazon_endpoints, pacer).pages()) == []


def test_an_empty_report_is_one_empty_page_telling_its_size(
    amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("empty", 0)

    assert read(catalog_of(seller, amazon_endpoints, pacer).pages()) == [CatalogPage(items_total=0)]


def test_a_fatal_report_fails_the_sync(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("fatal", 100)
    set_faults(sandbox, seller, report_outcome="FATAL")

    with pytest.raises(MarketplaceError, match="Amazon report ended FATAL") as failure:
        read(catalog_of(seller, amazon_endpoints, pacer).pages())
    assert failure.value.retryable


class FakeClock:
    """A pacer's clock that only moves when the pacer sleeps: no test waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fake_time_pacer(clock: FakeClock) -> Pacer:
    rates = {operation: Rate(1000, 1000) for operation in DEFAULT_RATES}
    return Pacer(rates, clock=clock, sleep=clock.sleep)


def test_report_polls_pause_longer_and_longer_up_to_thirty_seconds() -> None:
    pauses = report_poll_pauses()

    assert [next(pauses) for _ in range(9)] == [0.5, 1, 2, 4, 8, 15, 30, 30, 30]


def test_the_report_is_polled_after_growing_pauses(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints
) -> None:
    seller = unique_account("polled", 50)
    clock = FakeClock()

    products, _ = collect(catalog_of(seller, amazon_endpoints, fake_time_pacer(clock)).pages())

    assert products == expected_amazon(seller)
    # The sandbox finishes a report on its third poll.
    assert clock.sleeps == [0.5, 1.0]
    assert call_counts(sandbox, seller)["getReport"] == 3


def test_a_report_that_never_finishes_fails_after_an_hour_of_polling(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints
) -> None:
    seller = unique_account("never-done", 50)
    set_faults(sandbox, seller, report_outcome="IN_PROGRESS")
    clock = FakeClock()

    with pytest.raises(MarketplaceError) as failure:
        read(catalog_of(seller, amazon_endpoints, fake_time_pacer(clock)).pages())

    assert failure.value.retryable
    assert failure.value.message.startswith("Amazon did not finish report ")
    assert failure.value.message.endswith(" within an hour; try again later")
    assert 3570 <= clock.now <= 3600
    assert max(clock.sleeps) == 30
    assert call_counts(sandbox, seller)["getReport"] == len(clock.sleeps) + 1 == 125


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            "getInventorySummaries",
            "Amazon kept returning the same page of FBA inventory; try again later",
        ),
        (
            "searchCatalogItems",
            "Amazon kept returning the same page of catalog items; try again later",
        ),
    ],
)
def test_a_page_token_handed_back_again_ends_the_sync_instead_of_looping(
    sandbox: SandboxHandle,
    amazon_endpoints: AmazonEndpoints,
    pacer: Pacer,
    operation: str,
    message: str,
) -> None:
    seller = unique_account("repeat-token", 300)
    set_faults(sandbox, seller, repeat_cursor=[operation])

    with pytest.raises(MarketplaceError) as failure:
        collect(catalog_of(seller, amazon_endpoints, pacer).pages())
    assert failure.value.message == message
    assert failure.value.retryable
    assert call_counts(sandbox, seller)[operation] == 2


def test_a_token_expiring_mid_sync_is_refreshed_once_and_the_sync_completes(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("expiring", 1000)
    # About 60 calls in all: the first token expires once, the second lasts to the end.
    set_faults(sandbox, seller, token_expires_after=40)

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)
    assert call_counts(sandbox, seller)["lwaToken"] == 2


def test_a_token_rejected_as_soon_as_issued_fails_clearly(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("always-expired", 100)
    set_faults(sandbox, seller, token_expires_after=0)

    with pytest.raises(MarketplaceError, match="rejected a freshly issued access token") as failure:
        read(catalog_of(seller, amazon_endpoints, pacer).pages())
    assert not failure.value.retryable
    # FBA inventory and the report are read at once: still one fresh token between them.
    assert call_counts(sandbox, seller)["lwaToken"] == 2


def test_empty_bodied_bad_gateways_are_retried_never_taken_for_the_last_page(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("bad-gateway", 800)
    set_faults(sandbox, seller, bad_gateway_every={"*": 2})

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)


def test_connections_reset_mid_page_are_retried(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("reset", 800)
    set_faults(sandbox, seller, reset_every={"*": 3})

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)
    assert call_counts(sandbox, seller)["downloadReportDocument"] >= 1


def test_slow_answers_only_make_the_sync_slower(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("slow", 60)
    set_faults(sandbox, seller, delay_seconds={"*": 0.02})

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)


def test_rows_with_unparsable_prices_are_skipped_one_by_one(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("bad-price", 300)
    set_faults(sandbox, seller, bad_price_every=7)

    products, skipped = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    bad = {
        listing.sku
        for index, listing in enumerate(amazon_catalogue(seller))
        if (index + 1) % 7 == 0
    }
    assert {item.sku for item in skipped} == bad
    assert all("'N/A'" in item.message for item in skipped)
    expected = expected_amazon(seller)
    assert products == {sku: product for sku, product in expected.items() if sku not in bad}


def test_a_rejected_client_id_fails_with_a_clear_message(
    amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("bad-client", 10)
    catalog = catalog_of(seller, amazon_endpoints, pacer, client_id="invalid-client")

    with pytest.raises(
        MarketplaceError, match=r"rejected the LWA client id or secret \(invalid_client\)"
    ) as failure:
        read(catalog.pages())
    assert not failure.value.retryable


def test_a_revoked_refresh_token_asks_the_seller_to_reconnect(
    amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("revoked", 10)

    with pytest.raises(MarketplaceError) as failure:
        read(catalog_of(seller, amazon_endpoints, pacer).pages())
    assert failure.value.message == (
        "Amazon rejected the refresh token (invalid_grant): reconnect your Amazon account"
    )
    assert not failure.value.retryable


def test_missing_credentials_are_named() -> None:
    with pytest.raises(MarketplaceError, match="no lwa_client_secret"):
        AmazonCatalog(
            {"refresh_token": "x", "lwa_app_id": "y"},
            AmazonEndpoints(),
            Pacer(),
            account="org",
        )


def test_access_tokens_are_reused_until_shortly_before_they_expire() -> None:
    now = [0.0]
    tokens = AccessTokenCache(clock=lambda: now[0])
    fetched: list[int] = []

    def fetch() -> dict[str, Any]:
        fetched.append(1)
        return {"access_token": f"Atza|{len(fetched)}", "expires_in": 3600}

    key = ("https://lwa/token", "app", "refresh")
    first = tokens.get(key, fetch)
    now[0] = 3500.0
    again = tokens.get(key, fetch)
    now[0] = 3545.0
    renewed = tokens.get(key, fetch)
    tokens.drop(key, renewed)
    after_drop = tokens.get(key, fetch)

    assert first == again == {"access_token": "Atza|1", "expires_in": 3600}
    assert renewed["access_token"] == "Atza|2"
    assert after_drop["access_token"] == "Atza|3"


def test_a_refused_token_that_was_replaced_already_is_not_dropped() -> None:
    tokens = AccessTokenCache(clock=lambda: 0.0)
    fetched: list[int] = []

    def fetch() -> dict[str, Any]:
        fetched.append(1)
        return {"access_token": f"Atza|{len(fetched)}", "expires_in": 3600}

    key = ("https://lwa/token", "app", "refresh")
    refused = tokens.get(key, fetch)
    tokens.drop(key, refused)
    replacement = tokens.get(key, fetch)
    # A second call that had sent the refused token hears of it only now.
    tokens.drop(key, refused)

    assert tokens.get(key, fetch) is replacement
    assert len(fetched) == 2


def test_a_resync_reuses_stored_enrichment_of_unchanged_asins(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("reuse", 300)
    first, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())
    asked_first = call_counts(sandbox, seller)["searchCatalogItems"]
    moved = "AMZ-000007"  # as if the seller had mapped this SKU to another ASIN since

    async def stored(skus: list[str]) -> dict[str, tuple[str, Enrichment]]:
        return {
            sku: (
                "B0OLDASIN0" if sku == moved else first[sku].asin,
                Enrichment(first[sku].brand, first[sku].category, first[sku].image_url),
            )
            for sku in skus
        }

    again, _ = collect(
        catalog_of(seller, amazon_endpoints, pacer, stored_enrichment=stored).pages()
    )

    assert again == first
    assert call_counts(sandbox, seller)["searchCatalogItems"] - asked_first == 1


def test_a_cached_access_token_is_not_handed_to_whoever_lacks_the_client_secret(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("secret", 20)
    collect(catalog_of(seller, amazon_endpoints, pacer).pages())
    intruder = AmazonCatalog(
        {
            "refresh_token": seller,
            "lwa_app_id": "amzn1.application-oa2-client.demo",
            "lwa_client_secret": "a guess",
            "seller_id": "A1SELLER",
        },
        amazon_endpoints,
        pacer,
        account="intruder",
        backoff=FAST_BACKOFF,
    )
    tokens_before = call_counts(sandbox, seller)["lwaToken"]
    collect(intruder.pages())
    # The intruder had to ask LWA itself (which, in the sandbox, accepts any secret).
    assert call_counts(sandbox, seller)["lwaToken"] == tokens_before + 1


def test_fba_inventory_is_read_while_the_report_is_made_and_pages_are_enriched(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints
) -> None:
    seller = unique_account("overlapped", 600)
    # Each operation paced on a bucket of its own. FBA inventory's 4 pages at 5/s take longer
    # than making the report, so Catalog Items calls start before they are all read.
    rates = {operation: Rate(50, 1) for operation in AMAZON_RATES}
    rates["getInventorySummaries"] = Rate(5, 1)

    async def sleep(seconds: float) -> None:
        # Real pacing; report polls pause 50 ms, not 0.5 s and 1 s.
        await asyncio.sleep(min(seconds, 0.05))

    pacer = Pacer(rates, sleep=sleep)

    products, _ = collect(catalog_of(seller, amazon_endpoints, pacer).pages())

    assert products == expected_amazon(seller)
    calls = timeline(sandbox, seller)
    operations = [operation for operation, _ in calls]
    assert operations.index("getInventorySummaries") < operations.index("getReportDocument")
    last_inventory_call = max(at for operation, at in calls if operation == "getInventorySummaries")
    first_catalog_call = min(at for operation, at in calls if operation == "searchCatalogItems")
    # Enriching did not wait for FBA inventory; only building a page with FBA listings does.
    assert first_catalog_call < last_inventory_call
    assert operations.count("getInventorySummaries") == 4


def test_fba_inventory_failing_does_not_matter_when_no_listing_is_fba(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints, pacer: Pacer
) -> None:
    seller = unique_account("no-fba", 0)
    # FBA inventory fails for good while the report is still being made.
    set_faults(
        sandbox,
        seller,
        throttle_every={"getInventorySummaries": 1},
        delay_seconds={"getReport": 0.1},
    )

    assert read(catalog_of(seller, amazon_endpoints, pacer).pages()) == [CatalogPage(items_total=0)]
    assert call_counts(sandbox, seller)["getInventorySummaries"] == 6


def recording_temporary_files(monkeypatch: pytest.MonkeyPatch) -> list[IO[bytes]]:
    opened: list[IO[bytes]] = []
    temporary_file = tempfile.TemporaryFile

    def recorded(*args: Any, **options: Any) -> IO[bytes]:
        opened.append(temporary_file(*args, **options))
        return opened[-1]

    monkeypatch.setattr(tempfile, "TemporaryFile", recorded)
    return opened


def test_a_consumer_that_stops_early_leaves_nothing_running_or_open(
    amazon_endpoints: AmazonEndpoints, pacer: Pacer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seller = unique_account("stops-early", 500)
    opened = recording_temporary_files(monkeypatch)

    async def first_page_only() -> tuple[CatalogPage, set[asyncio.Task[object]]]:
        async with aclosing(catalog_of(seller, amazon_endpoints, pacer).pages()) as pages:
            page = await anext(pages)
        return page, asyncio.all_tasks() - {asyncio.current_task()}

    page, left_running = asyncio.run(first_page_only())

    assert len(page.products) == 100
    assert left_running == set()
    assert [report.closed for report in opened] == [True]


def test_a_sync_cancelled_while_the_report_is_made_leaves_nothing_running(
    sandbox: SandboxHandle, amazon_endpoints: AmazonEndpoints
) -> None:
    seller = unique_account("cancelled", 3000)
    set_faults(sandbox, seller, report_outcome="IN_PROGRESS")

    async def cancel_while_polling() -> set[asyncio.Task[object]]:
        polling = asyncio.Event()

        async def sleep(seconds: float) -> None:
            # The second pause between polls: nothing else here waits this long.
            if seconds >= REPORT_POLL_PAUSES_SECONDS[1]:
                polling.set()
            await asyncio.sleep(seconds / 100)

        catalog = catalog_of(seller, amazon_endpoints, Pacer(DEFAULT_RATES, sleep=sleep))
        task = asyncio.create_task(read_all(catalog.pages()))
        await polling.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return asyncio.all_tasks() - {asyncio.current_task()}

    async def read_all(pages: AsyncIterator[CatalogPage]) -> list[CatalogPage]:
        return [page async for page in pages]

    # FBA inventory, read alongside the report, stopped with the sync.
    assert asyncio.run(cancel_while_polling()) == set()
