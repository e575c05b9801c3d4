"""Single-product reads and writes, listing pages and isolation (moto and dynalite)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from marketsync.backoff import Backoff
from marketsync.errors import InvalidArgument, NotFound
from services.catalog import store as store_module
from services.catalog.domain import ProductInput
from services.catalog.store import ProductStore
from services.catalog.tables import TABLE_DEFINITION

from .conftest import PAGE_TOKEN_KEY, CallCounter

ORG = 101
OTHER_ORG = 202


def mug(sku: str = "MUG-1", **fields: Any) -> ProductInput:
    base = ProductInput(
        sku=sku, title="Mug", price=Decimal("19.99"), currency="USD", inventory_quantity=5
    )
    return replace(base, **fields)


def page_all(store: ProductStore, org: int, page_size: int, marketplace: str = "") -> list[Any]:
    products, token, pages = [], "", 0
    while True:
        page = store.list_page(org, page_size, token, marketplace)
        assert page.products or pages == 0, "no page after the first may be empty"
        products.extend(page.products)
        pages += 1
        token = page.next_page_token
        if not token:
            return products


def test_an_upsert_returns_the_stored_product(store: ProductStore) -> None:
    stored = store.upsert(ORG, mug(price=Decimal("19.90"), description="Blue"))
    assert stored == store.get(ORG, "MUG-1")
    assert (stored.sku, stored.title, stored.description) == ("MUG-1", "Mug", "Blue")
    assert str(stored.price) == "19.90"
    assert (stored.currency, stored.inventory_quantity) == ("USD", 5)
    assert stored.marketplace == "" and stored.listings == () and stored.synced_at is None
    assert stored.created_at == stored.updated_at


def test_a_missing_product_is_not_found(store: ProductStore) -> None:
    with pytest.raises(NotFound, match="NOPE"):
        store.get(ORG, "NOPE")
    with pytest.raises(NotFound):
        store.delete(ORG, "NOPE")
    with pytest.raises(NotFound):
        store.price_history(ORG, "NOPE")


def test_an_update_keeps_created_at(store: ProductStore) -> None:
    first = store.upsert(ORG, mug())
    second = store.upsert(ORG, mug(title="Big mug"))
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert store.get(ORG, "MUG-1").title == "Big mug"


def test_an_unchanged_upsert_writes_nothing(store: ProductStore, calls: CallCounter) -> None:
    first = store.upsert(ORG, mug(marketplace="amazon", external_id="B01"))
    writes = calls.writes()
    assert store.upsert(ORG, mug(marketplace="amazon", external_id="B01")) == first
    assert calls.writes() == writes


def test_price_history_grows_only_when_the_price_changes(store: ProductStore) -> None:
    store.upsert(ORG, mug(price=Decimal("10.00")))
    store.upsert(ORG, mug(price=Decimal("10"), title="same price, new title"))
    store.upsert(ORG, mug(price=Decimal("12.50"), title="same price, new title"))
    store.upsert(ORG, mug(price=Decimal("12.50"), currency="EUR", title="same price, new title"))
    store.upsert(ORG, mug(price=Decimal("12.50"), currency="EUR", inventory_quantity=9))
    points = store.price_history(ORG, "MUG-1")
    assert [(str(p.price), p.currency) for p in points] == [
        ("10.00", "USD"),
        ("12.50", "USD"),
        ("12.50", "EUR"),
    ]
    assert [p.recorded_at for p in points] == sorted(p.recorded_at for p in points)


def test_a_product_without_a_price_has_no_history(store: ProductStore) -> None:
    store.upsert(ORG, ProductInput(sku="FREE"))
    assert store.get(ORG, "FREE").price is None
    assert store.price_history(ORG, "FREE") == []
    priced = store.upsert(ORG, mug("FREE", price=Decimal("5.00")))
    store.upsert(ORG, ProductInput(sku="FREE", title="free again"))
    store.batch_upsert(ORG, [mug("FREE", price=Decimal("6.00"))])
    points = store.price_history(ORG, "FREE")
    assert [(str(p.price), p.recorded_at) for p in points[:1]] == [("5.00", priced.updated_at)]
    assert [str(p.price) for p in points] == ["5.00", "6.00"]


def test_syncs_of_each_marketplace_keep_their_own_listing(store: ProductStore) -> None:
    store.upsert(ORG, mug(marketplace="amazon", external_id="B01", listing_status="Active"))
    store.upsert(ORG, mug(marketplace="walmart", price=Decimal("18.00"), external_id="W9"))
    product = store.upsert(ORG, mug(title="hand edit"))
    assert product.marketplace == "" and product.title == "hand edit"
    assert product.price == Decimal("19.99")
    assert product.synced_at is not None, "a hand edit keeps the last sync time"
    assert product == store.get(ORG, "MUG-1")
    assert [(lst.marketplace, lst.external_id, str(lst.price)) for lst in product.listings] == [
        ("amazon", "B01", "19.99"),
        ("walmart", "W9", "18.00"),
    ]
    assert product.listings[0].status == "Active"


def test_delete_removes_listings_and_history(store: ProductStore) -> None:
    store.upsert(ORG, mug(marketplace="amazon", external_id="B01"))
    store.upsert(ORG, mug(price=Decimal("5.00")))
    store.delete(ORG, "MUG-1")
    with pytest.raises(NotFound):
        store.get(ORG, "MUG-1")
    recreated = store.upsert(ORG, mug(price=Decimal("7.00")))
    assert recreated.listings == ()
    assert [str(p.price) for p in store.price_history(ORG, "MUG-1")] == ["7.00"]


def test_organizations_with_the_same_skus_never_see_each_other(store: ProductStore) -> None:
    for sku in ("A", "B", "C"):
        store.upsert(ORG, mug(sku, title=f"ours {sku}"))
        store.upsert(OTHER_ORG, mug(sku, title=f"theirs {sku}", price=Decimal("1.00")))
    store.delete(OTHER_ORG, "C")
    assert store.get(ORG, "C").title == "ours C"
    assert {p.title for p in page_all(store, ORG, 10)} == {"ours A", "ours B", "ours C"}
    assert {p.title for p in page_all(store, OTHER_ORG, 10)} == {"theirs A", "theirs B"}
    assert [str(p.price) for p in store.price_history(ORG, "A")] == ["19.99"]
    with pytest.raises(NotFound):
        store.get(OTHER_ORG, "C")


def test_pages_return_every_product_once_newest_first(
    store: ProductStore, calls: CallCounter
) -> None:
    # Ten batches of 25 share a created_at each: ties must page cleanly too.
    for batch in range(10):
        store.batch_upsert(ORG, [mug(f"SKU-{batch:02d}-{n:02d}") for n in range(25)])
    store.upsert(OTHER_ORG, mug("SKU-00-00"))
    queries_before = calls.counts.get("Query", 0)
    products = page_all(store, ORG, 40)
    assert sorted(p.sku for p in products) == sorted(
        f"SKU-{b:02d}-{n:02d}" for b in range(10) for n in range(25)
    )
    created = [p.created_at for p in products]
    assert created == sorted(created, reverse=True)
    assert calls.counts["Query"] - queries_before == 7  # 250 products, 40 a page


def test_a_full_last_page_has_no_token(store: ProductStore) -> None:
    store.batch_upsert(ORG, [mug(f"SKU-{n}") for n in range(10)])
    page = store.list_page(ORG, 10)
    assert len(page.products) == 10 and page.next_page_token == ""
    assert store.list_page(OTHER_ORG, 10).products == []


def test_a_page_of_100_costs_one_query_and_two_batch_gets(
    store: ProductStore, calls: CallCounter
) -> None:
    store.batch_upsert(ORG, [mug(f"SKU-{n:03d}", marketplace="amazon") for n in range(150)])
    store.upsert(ORG, mug("NEWEST", marketplace="amazon", external_id="A1"))
    store.upsert(ORG, mug("NEWEST", marketplace="walmart", external_id="W1"))
    calls.counts.clear()
    page = store.list_page(ORG, 100)
    assert len(page.products) == 100
    assert all(p.listings[0].marketplace == "amazon" for p in page.products)
    assert [lst.external_id for lst in page.products[0].listings] == ["A1", "W1"]
    # The index holds keys: one BatchGetItem reads the products, with the owner's listing
    # inside, and one asks for the other marketplace's.
    assert calls.counts == {"Query": 1, "BatchGetItem": 2}


def test_the_marketplace_filter_fills_pages_and_misses_nothing(store: ProductStore) -> None:
    walmart = set()
    for batch in range(6):
        products = []
        for n in range(30):
            sku = f"SKU-{batch}-{n:02d}"
            on_walmart = (batch * 30 + n) % 7 == 0
            products.append(mug(sku, marketplace="walmart" if on_walmart else "amazon"))
            walmart |= {sku} if on_walmart else set()
        store.batch_upsert(ORG, products)
    pages: list[int] = []
    token, seen = "", list[str]()
    while True:
        page = store.list_page(ORG, 5, token, "walmart")
        pages.append(len(page.products))
        seen.extend(p.sku for p in page.products)
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(walmart)
    assert all(size == 5 for size in pages[:-1]) and pages[-1] >= 1
    assert len(page_all(store, ORG, 50, "amazon")) == 180 - len(walmart)


def test_a_sparse_filter_reads_a_bounded_number_of_products_per_page(
    store: ProductStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.catalog.pages.MAX_SCANNED_PER_PAGE", 40)
    products = [mug(f"SKU-{n:03d}", marketplace="amazon") for n in range(150)]
    products[3] = mug("SKU-003", marketplace="walmart")
    store.batch_upsert(ORG, products)

    pages, token, seen = 0, "", list[str]()
    while True:
        page = store.list_page(ORG, 10, token, "walmart")
        pages += 1
        seen.extend(p.sku for p in page.products)
        token = page.next_page_token
        if not token:
            break
    # Short (even empty) pages with a token to go on, instead of one request reading them all.
    assert seen == ["SKU-003"]
    assert pages > 1


def test_page_tokens_from_elsewhere_are_refused(
    store: ProductStore, client: Any, table: str
) -> None:
    store.batch_upsert(ORG, [mug(f"SKU-{n}") for n in range(5)])
    store.batch_upsert(OTHER_ORG, [mug(f"SKU-{n}") for n in range(5)])
    token = store.list_page(ORG, 2).next_page_token
    assert token
    with pytest.raises(InvalidArgument, match="page_token"):
        store.list_page(OTHER_ORG, 2, token)
    with pytest.raises(InvalidArgument, match="page_token"):
        store.list_page(ORG, 2, token, "amazon")
    with pytest.raises(InvalidArgument, match="page_token"):
        store.list_page(ORG, 2, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(InvalidArgument, match="page_token"):
        store.list_page(ORG, 2, "bm90IGEgdG9rZW4.c2lnbmF0dXJl")
    other_key = ProductStore(client, table, PAGE_TOKEN_KEY[::-1])
    with pytest.raises(InvalidArgument, match="page_token"):
        other_key.list_page(ORG, 2, token)
    assert len(store.list_page(ORG, 2, token).products) == 2


def test_invalid_requests_are_refused_before_any_call(
    store: ProductStore, calls: CallCounter
) -> None:
    with pytest.raises(InvalidArgument, match="page_size"):
        store.list_page(ORG, 0)
    with pytest.raises(InvalidArgument, match="marketplace"):
        store.list_page(ORG, 10, "", "ebay")
    with pytest.raises(InvalidArgument, match="sku"):
        store.get(ORG, "A#B")
    with pytest.raises(InvalidArgument, match="currency"):
        store.upsert(ORG, mug(currency="usd"))
    assert calls.counts == {}


def test_concurrent_price_changes_each_leave_a_point(
    make_store: Callable[..., ProductStore],
) -> None:
    # Backoff as in production, only shorter: 40 writers at once used to exhaust a count of
    # conflict retries ("kept changing while it was being written").
    store = make_store(backoff=Backoff(base_seconds=0.001, cap_seconds=0.1, deadline_seconds=20.0))
    store.upsert(ORG, mug(price=Decimal("1.00")))
    prices = [Decimal(f"{n}.00") for n in range(2, 42)]
    barrier = threading.Barrier(len(prices))
    errors: list[Exception] = []

    def change(price: Decimal) -> None:
        barrier.wait()
        try:
            store.upsert(ORG, mug(price=price, title=f"at {price}"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(price,)) for price in prices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = store.get(ORG, "MUG-1")
    history = store.price_history(ORG, "MUG-1")
    assert sorted(p.price for p in history) == [Decimal("1.00"), *prices]
    assert history[-1].price == final.price, "the newest point is the current price"
    assert final.title == f"at {final.price}", "fields of one write, not a mix"


def test_concurrent_syncs_of_both_marketplaces_keep_both_listings(store: ProductStore) -> None:
    skus = [f"SKU-{n:02d}" for n in range(30)]
    barrier = threading.Barrier(4)

    def sync(marketplace: str, single: bool) -> None:
        products = [mug(sku, marketplace=marketplace, external_id=marketplace) for sku in skus]
        barrier.wait()
        if single:
            for product in products:
                store.upsert(ORG, product)
        else:
            store.batch_upsert(ORG, products)

    threads = [
        threading.Thread(target=sync, args=(marketplace, single))
        for marketplace in ("amazon", "walmart")
        for single in (True, False)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for product in page_all(store, ORG, 100):
        assert [lst.external_id for lst in product.listings] == ["amazon", "walmart"]


@pytest.mark.parametrize("by_hand_first", [False, True], ids=["new", "written-by-hand-first"])
def test_concurrent_first_writes_keep_every_listing_and_every_price(
    store: ProductStore, by_hand_first: bool
) -> None:
    # A first write keeps its listing (or its price) in METADATA alone, and a write planned
    # before it would put METADATA back without them: neither may be a last-wins put.
    skus = [f"SKU-{n:02d}" for n in range(30)]
    prices = [Decimal("9.00")] if by_hand_first else []
    if by_hand_first:
        store.batch_upsert(ORG, [mug(sku, price=prices[0]) for sku in skus])
    writers = {"amazon": Decimal("1.00"), "walmart": Decimal("2.00"), "": Decimal("3.00")}
    barrier = threading.Barrier(len(writers))
    upserted: list[int] = []

    def write(marketplace: str, price: Decimal) -> None:
        products = [
            mug(sku, marketplace=marketplace, price=price, external_id=marketplace) for sku in skus
        ]
        barrier.wait()
        upserted.append(store.batch_upsert(ORG, products).upserted)

    threads = [threading.Thread(target=write, args=writer) for writer in writers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert upserted == [len(skus)] * len(writers)
    for product in page_all(store, ORG, 100):
        assert [lst.external_id for lst in product.listings] == ["amazon", "walmart"]
        points = store.price_history(ORG, product.sku)
        assert sorted(p.price for p in points) == sorted([*prices, *writers.values()])
        assert product.price in writers.values()


def test_prices_are_stored_as_exact_fixed_point_numbers(store: ProductStore) -> None:
    store.upsert(ORG, mug("BIG", price=Decimal("1E+2")))
    store.upsert(ORG, mug("HUGE", price=Decimal("9" * 36 + ".99")))
    assert str(store.get(ORG, "BIG").price) == "100.00"
    assert str(store.get(ORG, "HUGE").price) == "9" * 36 + ".99"


def test_a_sku_with_a_control_character_is_never_written(store: ProductStore) -> None:
    with pytest.raises(InvalidArgument, match="sku must not contain control characters"):
        store.upsert(ORG, mug("A\x00B"))
    result = store.batch_upsert(ORG, [mug("GOOD"), mug("A\x00B"), mug("LINE\n")])
    assert result.upserted == 1
    assert [sku for sku, _ in result.failed] == ["A\x00B", "LINE\n"]
    assert all("U+00" in message for _, message in result.failed)
    assert [p.sku for p in page_all(store, ORG, 10)] == ["GOOD"]


def test_a_product_stored_with_a_control_character_can_be_read_and_deleted(
    store: ProductStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written as the code before the rule did: every check but that one.
    with monkeypatch.context() as old_rules:
        old_rules.setattr(store_module, "validate_product_input", lambda product: None)
        store.upsert(ORG, mug("A\x00B", marketplace="walmart", external_id="W1"))
        store.upsert(ORG, mug("A\x00B", price=Decimal("2.00")))
    store.upsert(ORG, mug("KEEP"))
    assert store.get(ORG, "A\x00B").listings[0].external_id == "W1"
    assert len(store.price_history(ORG, "A\x00B")) == 2

    result = store.batch_delete(ORG, ["A\x00B", "A\x00B", "GONE"])
    assert (result.deleted, result.not_found, result.failed) == (1, ["GONE"], [])
    with pytest.raises(NotFound):
        store.get(ORG, "A\x00B")
    with pytest.raises(NotFound):
        store.price_history(ORG, "A\x00B")
    assert [p.sku for p in page_all(store, ORG, 10)] == ["KEEP"]
    assert store.batch_delete(ORG, ["A\x00B"]).not_found == ["A\x00B"]


def test_a_batch_delete_names_skus_that_cannot_name_a_product(store: ProductStore) -> None:
    store.upsert(ORG, mug("MUG-1"))
    result = store.batch_delete(ORG, ["A#B", "", "MUG-1"])
    assert result.deleted == 1
    assert [(sku, "sku" in message) for sku, message in result.failed] == [
        ("A#B", True),
        ("", True),
    ]
    with pytest.raises(InvalidArgument, match="skus: at most 100"):
        store.batch_delete(ORG, [f"S{n}" for n in range(101)])


def test_a_table_made_when_gsi1_projected_every_attribute_lists_from_the_index(
    client: Any, calls: CallCounter
) -> None:
    definition = copy.deepcopy(TABLE_DEFINITION)
    definition["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "ALL"}
    name = f"products-all-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, **definition)
    # dynalite makes a table ACTIVE a moment after answering; under load, writes came first.
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    old_table = ProductStore(client, name, PAGE_TOKEN_KEY)
    old_table.batch_upsert(ORG, [mug(f"SKU-{n}", marketplace="amazon") for n in range(5)])
    calls.counts.clear()
    page = old_table.list_page(ORG, 10)
    assert sorted(p.sku for p in page.products) == [f"SKU-{n}" for n in range(5)]
    assert all(p.listings[0].marketplace == "amazon" for p in page.products)
    assert calls.counts == {"Query": 1, "BatchGetItem": 1}, "products come with the index"
