"""The sandbox itself: what it promises the people and tests that use it."""

from __future__ import annotations

import gzip

import httpx

from dev.sandbox import SandboxHandle
from dev.sandbox.amazon import listings_report, report_columns
from dev.sandbox.catalogue import DEFAULT_SIZE, catalogue_size, walmart_catalogue
from tests.sync.conftest import call_counts, unique_account


def test_the_credential_chooses_the_catalogue_size() -> None:
    assert catalogue_size("demo-3000") == 3000
    assert catalogue_size("Atzr|IwEBIA") == DEFAULT_SIZE
    assert len(walmart_catalogue("demo-25")) == 25


def test_report_columns_move_from_seller_to_seller() -> None:
    assert report_columns("seller-a") != report_columns("seller-b")
    assert sorted(report_columns("seller-a")) == sorted(report_columns("seller-b"))


def test_the_report_is_cp1252_with_characters_latin1_lacks() -> None:
    encoded = listings_report("demo-200").encode("cp1252")

    assert "\u2019".encode("cp1252") in encoded
    assert "\u2122".encode("cp1252") in encoded


def test_the_host_header_is_not_checked(sandbox: SandboxHandle) -> None:
    # sp_api over plain HTTP sends the URL minus its first 8 characters as the Host.
    answer = httpx.post(
        f"{sandbox.url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "demo-5",
            "client_id": "app",
            "client_secret": "secret",
        },
        headers={"Host": sandbox.url[8:]},
    )

    assert answer.status_code == 200
    assert answer.json()["token_type"] == "bearer"


def test_the_report_lifecycle_and_document(sandbox: SandboxHandle) -> None:
    seller = unique_account("lifecycle", 30)
    with httpx.Client(base_url=sandbox.url) as client:
        token = client.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": seller,
                "client_id": "app",
                "client_secret": "secret",
            },
        ).json()["access_token"]
        headers = {"x-amz-access-token": token}
        created = client.post(
            "/reports/2021-06-30/reports",
            json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["X"]},
            headers=headers,
        )
        report_id = created.json()["reportId"]
        statuses = [
            client.get(f"/reports/2021-06-30/reports/{report_id}", headers=headers).json()
            for _ in range(3)
        ]
        document = client.get(
            f"/reports/2021-06-30/documents/{statuses[-1]['reportDocumentId']}", headers=headers
        ).json()
        body = client.get(document["url"]).content

    assert created.status_code == 202
    assert [status["processingStatus"] for status in statuses] == [
        "IN_QUEUE",
        "IN_PROGRESS",
        "DONE",
    ]
    assert document["compressionAlgorithm"] == "GZIP"
    lines = gzip.decompress(body).decode("cp1252").splitlines()
    assert lines[0].split("\t") == report_columns(seller)
    assert len(lines) == 31
    assert call_counts(sandbox, seller)["getReport"] == 3


def test_unknown_fault_switches_are_refused(sandbox: SandboxHandle) -> None:
    answer = httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"account": "x", "explode_every": {"*": 2}}
    )

    assert answer.status_code == 400
    assert "explode_every" in answer.json()["message"]


def test_walmart_refuses_pages_over_fifty(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url) as client:
        headers = {"WM_SVC.NAME": "Walmart Marketplace", "WM_QOS.CORRELATION_ID": "c-1"}
        token = client.post(
            "/v3/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-10", "secret"),
            headers=headers,
        ).json()["access_token"]
        answer = client.get(
            "/v3/items",
            params={"limit": 51},
            headers={**headers, "WM_SEC.ACCESS_TOKEN": token},
        )

    assert answer.status_code == 400


def test_listings_search_pages_with_page_tokens(sandbox: SandboxHandle) -> None:
    seller = unique_account("listings", 30)
    with httpx.Client(base_url=sandbox.url) as client:
        token = client.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": seller,
                "client_id": "app",
                "client_secret": "secret",
            },
        ).json()["access_token"]
        params: dict[str, str | int] = {"marketplaceIds": "ATVPDKIKX0DER", "pageSize": 20}
        headers = {"x-amz-access-token": token}
        first = client.get("/listings/2021-08-01/items/A1SELLER", params=params, headers=headers)
        page_token = first.json()["pagination"]["nextToken"]
        second = client.get(
            "/listings/2021-08-01/items/A1SELLER",
            params={**params, "pageToken": page_token},
            headers=headers,
        )

    assert len(first.json()["items"]) == 20
    assert len(second.json()["items"]) == 10
    assert "pagination" not in second.json()
