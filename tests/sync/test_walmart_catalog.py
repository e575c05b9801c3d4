"""The Walmart client against the sandbox: a whole catalogue, and every way a sync can go wrong."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import aclosing
from decimal import Decimal
from itertools import pairwise

import pytest

from dev.sandbox import SandboxHandle
from services.sync.marketplaces import (
    WALMART_RATES,
    CatalogPage,
    MarketplaceError,
    MarketplaceProduct,
    Pacer,
    Rate,
    SkippedItem,
    WalmartCatalog,
    WalmartEndpoints,
)
from services.sync.marketplaces.walmart import ITEMS, STOCK, _Arrival, _Join, total_items
from tests.sync.conftest import (
    FAST_BACKOFF,
    call_counts,
    collect,
    expected_walmart,
    joined,
    read,
    set_faults,
    timeline,
    unique_account,
)


def catalog_of(client_id: str, endpoints: WalmartEndpoints, pacer: Pacer) -> WalmartCatalog:
    credentials = {"client_id": client_id, "client_secret": "s3cret"}
    return WalmartCatalog(credentials, endpoints, pacer, account=client_id, backoff=FAST_BACKOFF)


def test_a_catalogue_of_two_thousand_arrives_complete_and_right(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("complete", 2000)
    pages = read(catalog_of(client_id, walmart_endpoints, pacer).pages())

    products, skipped = joined(pages)
    assert skipped == []
    assert products == expected_walmart(client_id)
    assert all(page.products for page in pages)
    assert {page.items_total for page in pages} == {2000}
    assert all(isinstance(product.price, Decimal) for product in products.values())
    assert any(product.inventory_quantity == 0 for product in products.values())
    calls = call_counts(sandbox, client_id)
    assert calls == {"walmartToken": 1, "getAllItems": 40, "getInventories": 36}


def test_prices_never_pass_through_a_float(
    walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("prices", 300)
    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    for product in products.values():
        assert product.price == product.price.quantize(Decimal("0.01"))
        assert len(product.price.as_tuple().digits) <= 5


def test_throttling_every_few_calls_still_completes(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("throttled", 600)
    set_faults(sandbox, client_id, throttle_every={"*": 3})

    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    assert products == expected_walmart(client_id)


def test_throttling_that_never_ends_fails_after_bounded_attempts(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("throttled-always", 100)
    set_faults(sandbox, client_id, throttle_every={"getAllItems": 1})

    with pytest.raises(MarketplaceError) as failure:
        read(catalog_of(client_id, walmart_endpoints, pacer).pages())
    assert failure.value.message == "Walmart kept throttling after 6 attempts; try again later"
    assert failure.value.retryable


def test_a_token_expiring_mid_sync_is_refreshed_once_and_the_sync_completes(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("expiring", 1000)
    # 20 item pages and 18 inventory pages: the first token expires once.
    set_faults(sandbox, client_id, token_expires_after=25)

    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    assert products == expected_walmart(client_id)
    assert call_counts(sandbox, client_id)["walmartToken"] == 2


def test_empty_bodied_bad_gateways_are_retried_never_taken_for_the_last_page(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("bad-gateway", 800)
    set_faults(sandbox, client_id, bad_gateway_every={"*": 2})

    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    assert products == expected_walmart(client_id)


def test_connections_reset_mid_page_are_retried(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("reset", 800)
    set_faults(sandbox, client_id, reset_every={"*": 3})

    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    assert products == expected_walmart(client_id)


def test_slow_answers_only_make_the_sync_slower(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("slow", 120)
    set_faults(sandbox, client_id, delay_seconds={"*": 0.02})

    products, _ = collect(catalog_of(client_id, walmart_endpoints, pacer).pages())

    assert products == expected_walmart(client_id)


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ("getAllItems", "Walmart kept returning the same page of items; try again later"),
        ("getInventories", "Walmart kept returning the same page of inventory; try again later"),
    ],
)
def test_a_cursor_handed_back_again_ends_the_sync_instead_of_looping(
    sandbox: SandboxHandle,
    walmart_endpoints: WalmartEndpoints,
    pacer: Pacer,
    operation: str,
    message: str,
) -> None:
    client_id = unique_account("repeat-cursor", 300)
    set_faults(sandbox, client_id, repeat_cursor=[operation])

    with pytest.raises(MarketplaceError) as failure:
        read(catalog_of(client_id, walmart_endpoints, pacer).pages())
    assert failure.value.message == message
    assert failure.value.retryable
    assert call_counts(sandbox, client_id)[operation] == 2


def test_a_rejected_client_id_fails_with_a_clear_message(
    walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("invalid", 10)

    with pytest.raises(
        MarketplaceError, match="Walmart rejected the client id or secret"
    ) as failure:
        read(catalog_of(client_id, walmart_endpoints, pacer).pages())
    assert not failure.value.retryable


def test_missing_credentials_are_named() -> None:
    with pytest.raises(MarketplaceError, match="no client_secret") as failure:
        WalmartCatalog({"client_id": "x"}, WalmartEndpoints(), Pacer(), account="org")
    assert not failure.value.retryable


def test_inventory_and_item_pages_are_read_at_once_and_joined_by_sku(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints
) -> None:
    client_id = unique_account("overlapped", 2000)
    # Each operation paced on a bucket of its own, as Walmart does, slowly enough to interleave.
    pacer = Pacer({operation: Rate(50, 1) for operation in WALMART_RATES})
    arrived: list[float] = []

    async def consume() -> list[CatalogPage]:
        pages = []
        async for page in catalog_of(client_id, walmart_endpoints, pacer).pages():
            arrived.append(time.monotonic())
            pages.append(page)
        return pages

    products, skipped = joined(asyncio.run(consume()))

    assert skipped == []
    assert products == expected_walmart(client_id)
    calls = timeline(sandbox, client_id)
    operations = [operation for operation, _ in calls if operation != "walmartToken"]
    assert operations.count("getAllItems") == 40
    assert operations.count("getInventories") == 36
    # Not all of one, then all of the other: the two alternate all along.
    changes = sum(1 for before, after in pairwise(operations) if before != after)
    assert changes >= 20
    last_inventory_call = max(at for operation, at in calls if operation == "getInventories")
    # Items went on while the inventory was still being read.
    assert arrived[0] < last_inventory_call


def product(sku: str) -> dict[str, object]:
    return {
        "sku": sku,
        "wpid": f"W{sku}",
        "productName": "Mug",
        "productType": "Mugs",
        "price": {"currency": "USD", "amount": Decimal("9.99")},
        "publishedStatus": "PUBLISHED",
    }


def stocked(page: CatalogPage) -> dict[str, int | str]:
    """What the page lets go on: quantity by SKU, or a skipped item's message."""
    outcomes: dict[str, int | str] = {p.sku: p.inventory_quantity for p in page.products}
    return outcomes | {item.sku: item.message for item in page.skipped}


def test_an_item_goes_on_as_soon_as_its_stock_is_known() -> None:
    join = _Join()

    assert stocked(join.add_stock([("WM-1", 4)])) == {}
    assert stocked(join.add_items([product("WM-1"), product("WM-2")])) == {"WM-1": 4}
    assert stocked(join.add_stock([("WM-3", 1), ("WM-2", 7)])) == {"WM-2": 7}
    assert stocked(join.add_items([product("WM-3")])) == {"WM-3": 1}


def test_items_the_inventory_never_names_go_on_with_none_once_it_is_read() -> None:
    join = _Join()
    join.add_items([product("WM-1"), product("WM-2")])

    assert stocked(join.add_stock([("WM-2", 3)])) == {"WM-2": 3}
    assert stocked(join.complete_stock()) == {"WM-1": 0}
    # From then on, items go straight through.
    assert stocked(join.add_items([product("WM-4")])) == {"WM-4": 0}


def test_stock_that_cannot_be_read_skips_its_item_whichever_comes_first() -> None:
    unreadable = SkippedItem("WM-1", "Walmart gives the available-to-sell quantity 'junk'")
    for join, arrives_first in ((_Join(), "stock"), (_Join(), "item")):
        if arrives_first == "stock":
            join.add_stock([("WM-1", unreadable)])
            page = join.add_items([product("WM-1")])
        else:
            join.add_items([product("WM-1")])
            page = join.add_stock([("WM-1", unreadable)])
        assert page.skipped == [unreadable]
        assert page.products == []


def test_an_item_that_cannot_be_written_is_skipped_without_waiting_for_stock() -> None:
    page = _Join().add_items([{**product("WM-1"), "productName": 12}])

    assert page.skipped == [SkippedItem("WM-1", "Walmart gives productName as 12, not text")]


def test_only_what_waits_for_its_other_half_is_held() -> None:
    join = _Join()
    join.add_stock([(f"WM-{n}", n) for n in range(100)])
    join.add_items([product(f"WM-{n}") for n in range(100)])
    join.add_items([product("WM-LATE")])

    # Stock goes once its item has; only the item still without stock waits.
    assert join._stock == {}
    assert list(join._waiting) == ["WM-LATE"]


@pytest.mark.parametrize(("said", "total"), [(2000, 2000), (0, 0), ("120", 120)])
def test_the_catalogue_size_is_read_from_an_items_answer(said: object, total: int) -> None:
    assert total_items({"ItemResponse": [], "totalItems": said}) == total


@pytest.mark.parametrize("said", [None, -1, True, Decimal("1.5"), "many", 2**40])
def test_an_items_answer_without_a_readable_count_leaves_the_size_unknown(said: object) -> None:
    assert total_items({"ItemResponse": [], "totalItems": said}) is None
    assert total_items({"ItemResponse": []}) is None


def test_an_empty_catalogue_is_one_empty_page_telling_its_size(
    walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("empty", 0)

    assert read(catalog_of(client_id, walmart_endpoints, pacer).pages()) == [
        CatalogPage(items_total=0)
    ]


def test_every_page_after_the_first_items_answer_carries_its_catalogue_size() -> None:
    join = _Join()

    assert join.take(_Arrival(STOCK, [("WM-1", 4)])).items_total is None
    first = join.take(_Arrival(ITEMS, [product("WM-1"), product("WM-2")], total=3))
    assert (stocked(first), first.items_total) == ({"WM-1": 4}, 3)
    # Later answers may count items added since: the sync keeps the size it started with.
    assert join.take(_Arrival(ITEMS, [product("WM-3")], total=4)).items_total == 3
    assert join.take(_Arrival(STOCK, None)).items_total == 3


def test_a_consumer_that_stops_early_leaves_nothing_running(
    walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("stops-early", 500)

    async def first_page_only() -> tuple[CatalogPage, set[asyncio.Task[object]]]:
        async with aclosing(catalog_of(client_id, walmart_endpoints, pacer).pages()) as pages:
            page = await anext(pages)
        return page, asyncio.all_tasks() - {asyncio.current_task()}

    page, left_running = asyncio.run(first_page_only())

    assert page.products
    assert left_running == set()


def test_a_sync_cancelled_mid_page_leaves_nothing_running(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("cancelled", 500)
    set_faults(sandbox, client_id, delay_seconds={"*": 0.05})

    async def cancel_after_the_first_page() -> set[asyncio.Task[object]]:
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in catalog_of(client_id, walmart_endpoints, pacer).pages():
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(cancel_after_the_first_page()) == set()
    assert call_counts(sandbox, client_id)["getAllItems"] < 10


def own_threads() -> int:
    # The sandbox serves from this process with a thread per connection: those are not ours.
    return sum(1 for thread in threading.enumerate() if "process_request_thread" not in thread.name)


def test_five_hundred_syncs_wait_on_one_event_loop_without_a_thread_each(
    walmart_endpoints: WalmartEndpoints,
) -> None:
    waiting = most_waiting = most_threads = 0

    async def counted_sleep(seconds: float) -> None:
        nonlocal waiting, most_waiting
        waiting += 1
        most_waiting = max(most_waiting, waiting)
        try:
            await asyncio.sleep(seconds)
        finally:
            waiting -= 1

    # One seller account for pacing: its buckets make all the syncs wait their turns at once.
    pacer = Pacer({operation: Rate(1000, 1) for operation in WALMART_RATES}, sleep=counted_sleep)
    client_ids = [unique_account("many", 5) for _ in range(500)]

    async def sync(client_id: str) -> dict[str, MarketplaceProduct]:
        catalog = WalmartCatalog(
            {"client_id": client_id, "client_secret": "s3cret"},
            walmart_endpoints,
            pacer,
            account="one-seller",
            backoff=FAST_BACKOFF,
        )
        return joined([page async for page in catalog.pages()])[0]

    async def watch_threads() -> None:
        nonlocal most_threads
        while True:
            most_threads = max(most_threads, own_threads())
            await asyncio.sleep(0.005)

    async def all_syncs() -> list[dict[str, MarketplaceProduct]]:
        watcher = asyncio.create_task(watch_threads())
        try:
            return await asyncio.gather(*(sync(client_id) for client_id in client_ids))
        finally:
            watcher.cancel()

    results = asyncio.run(all_syncs())

    assert results == [expected_walmart(client_id) for client_id in client_ids]
    assert most_waiting >= 400
    assert most_threads < 40
