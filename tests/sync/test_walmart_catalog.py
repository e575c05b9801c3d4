"""The Walmart client against the sandbox: a whole catalogue, and every way a sync can go wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketsync.sandbox import SandboxHandle
from services.sync.marketplaces import (
    MarketplaceError,
    Pacer,
    WalmartCatalog,
    WalmartEndpoints,
)
from tests.sync.conftest import (
    FAST_BACKOFF,
    call_counts,
    collect,
    expected_walmart,
    set_faults,
    unique_account,
)


def catalog_of(client_id: str, endpoints: WalmartEndpoints, pacer: Pacer) -> WalmartCatalog:
    credentials = {"client_id": client_id, "client_secret": "s3cret"}
    return WalmartCatalog(credentials, endpoints, pacer, account=client_id, backoff=FAST_BACKOFF)


def test_a_catalogue_of_two_thousand_arrives_complete_and_right(
    sandbox: SandboxHandle, walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("complete", 2000)
    pages = list(catalog_of(client_id, walmart_endpoints, pacer).pages())

    products, skipped = collect(iter(pages))
    assert skipped == []
    assert products == expected_walmart(client_id)
    assert all(len(page.products) <= 50 for page in pages)
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
        list(catalog_of(client_id, walmart_endpoints, pacer).pages())
    assert failure.value.message == "Walmart kept throttling after 6 attempts; try again later"


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
        list(catalog_of(client_id, walmart_endpoints, pacer).pages())
    assert failure.value.message == message
    assert call_counts(sandbox, client_id)[operation] == 2


def test_a_rejected_client_id_fails_with_a_clear_message(
    walmart_endpoints: WalmartEndpoints, pacer: Pacer
) -> None:
    client_id = unique_account("invalid", 10)

    with pytest.raises(MarketplaceError, match="Walmart rejected the client id or secret"):
        list(catalog_of(client_id, walmart_endpoints, pacer).pages())


def test_missing_credentials_are_named() -> None:
    with pytest.raises(MarketplaceError, match="no client_secret"):
        WalmartCatalog({"client_id": "x"}, WalmartEndpoints(), Pacer(), account="org")
