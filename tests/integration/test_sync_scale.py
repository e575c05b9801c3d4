"""Catalogues at the scale sellers have: 50,000 Walmart items and 10,000 Amazon listings synced
at once through Envoy, at the marketplaces' documented rates (about four minutes each: Walmart
pages both inventories and items at 4 a second, Amazon enriches 40 products a second).

Every product is counted by the sync log; a sample is read back one by one (listing the whole
organization through moto, whose queries scan the table, would take longer than the syncs).
"""

from __future__ import annotations

import pytest

from dev.sandbox.catalogue import amazon_catalogue, walmart_catalogue
from tests.integration.conftest import Api
from tests.integration.sync_support import (
    account,
    amazon_credentials,
    as_stored,
    expected_amazon_product,
    expected_walmart_product,
    new_seller,
    save_credentials,
    start_sync,
    wait_for_sync,
    walmart_credentials,
)

pytestmark = pytest.mark.slow

WALMART_SIZE = 50_000
AMAZON_SIZE = 10_000
DEADLINE_SECONDS = 900.0
SAMPLE_EVERY = 997


def test_a_50k_walmart_and_a_10k_amazon_catalogue_sync_completely(api: Api) -> None:
    seller = new_seller(api)
    client_id = account("scale-client", WALMART_SIZE)
    refresh_token = account("Atzr|scale", AMAZON_SIZE)
    save_credentials(api, seller, "walmart", walmart_credentials(client_id))
    save_credentials(api, seller, "amazon", amazon_credentials(refresh_token))
    sync_ids = {
        "walmart": start_sync(api, seller.token, "walmart"),
        "amazon": start_sync(api, seller.token, "amazon"),
    }

    expected = {
        "walmart": [expected_walmart_product(item) for item in walmart_catalogue(client_id)],
        "amazon": [expected_amazon_product(item) for item in amazon_catalogue(refresh_token)],
    }
    for marketplace, sync_id in sync_ids.items():
        log = wait_for_sync(api, seller.token, sync_id, deadline=DEADLINE_SECONDS)
        size = len(expected[marketplace])
        assert (log["status"], log["attempt"]) == ("succeeded", 1), log
        assert (log["items_fetched"], log["items_written"], log["items_failed"]) == (
            size,
            size,
            0,
        ), log
        for product in expected[marketplace][::SAMPLE_EVERY]:
            stored = api.call("GET", f"/api/products/{product['sku']}", token=seller.token)
            assert stored.status == 200, stored.body
            assert as_stored(stored.body) == product
