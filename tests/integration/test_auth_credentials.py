"""Marketplace credentials through Envoy (saved, masked, listed, deleted, admin+ only, sealed at
rest), and the internal RPC the sync service reads them with, which only services may call."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import grpc
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dev.stack import CALLERS, Stack
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.service_auth import SERVICE_METADATA_KEY, ServiceCredential
from tests.integration.auth_support import (
    AMAZON_FIELDS,
    RFC3339,
    WALMART_FIELDS,
    assert_error,
    new_team,
)
from tests.integration.conftest import Answer, Api

ROLES = ("viewer", "member", "admin", "owner")
DEFAULT_AMAZON_MARKETPLACE = "ATVPDKIKX0DER"


def _masked(value: str) -> str:
    return "*" * (len(value) - 4) + value[-4:]


def _put(api: Api, token: str, marketplace: str, fields: Mapping[str, object]) -> Answer:
    return api.call("PUT", f"/api/credentials/{marketplace}", {"credentials": fields}, token=token)


def _assert_no_secret_in(answer: Answer, fields: dict[str, str]) -> None:
    text = json.dumps(answer.body)
    for value in fields.values():
        assert value not in text, f"{value!r} leaked in {text}"


def test_saving_amazon_credentials_answers_them_masked_with_the_default_marketplace(
    api: Api,
) -> None:
    token = api.register()["token"]
    answer = _put(api, token, "amazon", AMAZON_FIELDS)
    assert answer.status == 200, answer.body
    assert answer.body["marketplace"] == "amazon"
    assert answer.body["is_active"] is True
    assert RFC3339.fullmatch(answer.body["updated_at"])
    expected = {**AMAZON_FIELDS, "marketplace_id": DEFAULT_AMAZON_MARKETPLACE}
    assert answer.body["masked"] == {name: _masked(value) for name, value in expected.items()}
    _assert_no_secret_in(answer, expected)


def test_an_explicit_amazon_marketplace_id_is_kept(api: Api) -> None:
    token = api.register()["token"]
    answer = _put(api, token, "amazon", {**AMAZON_FIELDS, "marketplace_id": "A2EUQ1WTGCTBG2"})
    assert answer.status == 200, answer.body
    assert answer.body["masked"]["marketplace_id"] == _masked("A2EUQ1WTGCTBG2")


def test_credentials_are_listed_masked_replaced_and_deleted(api: Api) -> None:
    token = api.register()["token"]
    assert api.call("GET", "/api/credentials", token=token).body == {"credentials": []}
    assert _put(api, token, "walmart", WALMART_FIELDS).status == 200
    assert _put(api, token, "amazon", AMAZON_FIELDS).status == 200
    replacement = {**WALMART_FIELDS, "client_secret": "rotated-secret-9999"}
    assert _put(api, token, "walmart", replacement).status == 200

    listed = api.call("GET", "/api/credentials", token=token)
    assert listed.status == 200, listed.body
    by_marketplace = {c["marketplace"]: c for c in listed.body["credentials"]}
    assert set(by_marketplace) == {"amazon", "walmart"}
    assert by_marketplace["walmart"]["masked"] == {
        name: _masked(value) for name, value in replacement.items()
    }
    assert by_marketplace["amazon"]["masked"]["marketplace_id"] == _masked(
        DEFAULT_AMAZON_MARKETPLACE
    )
    for summary in by_marketplace.values():
        assert summary["is_active"] is True and RFC3339.fullmatch(summary["updated_at"])
    _assert_no_secret_in(listed, {**AMAZON_FIELDS, **WALMART_FIELDS, **replacement})

    deleted = api.call("DELETE", "/api/credentials/walmart", token=token)
    assert deleted.status == 200, deleted.body
    assert deleted.body == {}
    remaining = api.call("GET", "/api/credentials", token=token).body["credentials"]
    assert [c["marketplace"] for c in remaining] == ["amazon"]
    assert_error(api.call("DELETE", "/api/credentials/walmart", token=token), 404, "walmart")


@pytest.mark.parametrize(
    ("marketplace", "fields", "missing"),
    [
        ("amazon", {k: v for k, v in AMAZON_FIELDS.items() if k != "seller_id"}, "seller_id"),
        ("amazon", {**AMAZON_FIELDS, "refresh_token": "  "}, "refresh_token"),
        ("amazon", {}, "refresh_token"),
        ("walmart", {"client_id": WALMART_FIELDS["client_id"]}, "client_secret"),
        ("walmart", {"client_secret": WALMART_FIELDS["client_secret"]}, "client_id"),
    ],
)
def test_a_missing_field_is_refused_naming_it(
    api: Api, marketplace: str, fields: dict[str, str], missing: str
) -> None:
    token = api.register()["token"]
    assert_error(_put(api, token, marketplace, fields), 400, missing)
    assert api.call("GET", "/api/credentials", token=token).body == {"credentials": []}


@pytest.mark.parametrize("marketplace", ["ebay", "Amazon", "etsy", "amazon%20"])
def test_a_marketplace_other_than_amazon_or_walmart_is_refused(api: Api, marketplace: str) -> None:
    token = api.register()["token"]
    assert_error(_put(api, token, marketplace, WALMART_FIELDS), 400, "marketplace")
    assert_error(
        api.call("DELETE", f"/api/credentials/{marketplace}", token=token), 400, "marketplace"
    )


@pytest.mark.parametrize("role", ROLES)
def test_credential_routes_need_admin_or_owner(api: Api, role: str) -> None:
    team = new_team(api)
    token = team.person(role).token
    assert _put(api, team.owner.token, "amazon", AMAZON_FIELDS).status == 200
    answers = [
        _put(api, token, "walmart", WALMART_FIELDS),
        api.call("GET", "/api/credentials", token=token),
        api.call("DELETE", "/api/credentials/amazon", token=token),
    ]
    for answer in answers:
        if role in ("admin", "owner"):
            assert answer.status == 200, answer.body
        else:
            assert_error(answer, 403, "admin")
    stored = api.call("GET", "/api/credentials", token=team.owner.token).body["credentials"]
    expected = ["walmart"] if role in ("admin", "owner") else ["amazon"]
    assert [c["marketplace"] for c in stored] == expected


def test_another_organization_sees_and_deletes_none_of_the_credentials(api: Api) -> None:
    first = api.register()
    assert _put(api, first["token"], "amazon", AMAZON_FIELDS).status == 200
    outsider = api.register()["token"]
    assert api.call("GET", "/api/credentials", token=outsider).body == {"credentials": []}
    assert_error(api.call("DELETE", "/api/credentials/amazon", token=outsider), 404)
    assert (
        _put(api, outsider, "amazon", {**AMAZON_FIELDS, "seller_id": "OTHER-SELLER"}).status == 200
    )
    mine = api.call("GET", "/api/credentials", token=first["token"]).body["credentials"]
    assert mine[0]["masked"]["seller_id"] == _masked(AMAZON_FIELDS["seller_id"])


def test_credentials_are_stored_encrypted(api: Api, stack: Stack) -> None:
    registered = api.register()
    secrets = {**AMAZON_FIELDS, "refresh_token": "Atzr|only-in-this-test-7f3a9c"}
    assert _put(api, registered["token"], "amazon", secrets).status == 200
    with psycopg.connect(stack.env["CRED_DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT * FROM api_credentials WHERE organization_id = %s",
            (int(registered["organization"]["id"]),),
        ).fetchall()
    assert len(rows) == 1
    stored = b"".join(
        bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        for value in rows[0]
    )
    for value in secrets.values():
        assert value.encode() not in stored
        assert value[-8:].encode() not in stored


# ---- the internal RPC ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def internal_stub(stack: Stack) -> Iterator[auth_pb2_grpc.AuthInternalServiceStub]:
    with grpc.insecure_channel(stack.env["AUTH_ADDRESS"]) as channel:
        yield auth_pb2_grpc.AuthInternalServiceStub(channel)


def _request_for(api: Api) -> tuple[str, auth_pb2.GetMarketplaceCredentialsRequest]:
    registered = api.register()
    assert _put(api, registered["token"], "walmart", WALMART_FIELDS).status == 200
    request = auth_pb2.GetMarketplaceCredentialsRequest(
        organization_id=int(registered["organization"]["id"]), marketplace="walmart"
    )
    return registered["token"], request


def test_the_internal_rpc_answers_a_service_with_the_clear_credentials(
    api: Api, stack: Stack, internal_stub: auth_pb2_grpc.AuthInternalServiceStub
) -> None:
    _, request = _request_for(api)
    credential = ServiceCredential(stack.service_key("sync"), "sync")
    answer = internal_stub.GetMarketplaceCredentials(
        request, metadata=((SERVICE_METADATA_KEY, credential.token()),), timeout=10
    )
    assert dict(answer.credentials) == WALMART_FIELDS


@pytest.mark.parametrize("caller", ["catalog", "scheduler"])
def test_only_sync_may_read_credentials_in_clear(
    api: Api, stack: Stack, internal_stub: auth_pb2_grpc.AuthInternalServiceStub, caller: str
) -> None:
    _, request = _request_for(api)
    credential = ServiceCredential(stack.service_key(caller), caller)
    with pytest.raises(grpc.RpcError) as refused:
        internal_stub.GetMarketplaceCredentials(
            request, metadata=((SERVICE_METADATA_KEY, credential.token()),), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caller in (refused.value.details() or "")


@pytest.mark.parametrize("signer", ["catalog", "scheduler", "a stranger"])
def test_no_other_key_can_sign_as_sync(
    api: Api,
    stack: Stack,
    internal_stub: auth_pb2_grpc.AuthInternalServiceStub,
    signer: str,
) -> None:
    """A service holds its own key only, so it cannot claim to be sync and read every tenant's
    credentials in clear."""
    _, request = _request_for(api)
    key = stack.service_key(signer) if signer in CALLERS else Ed25519PrivateKey.generate()
    claiming_sync = ServiceCredential(key, "sync").token()
    with pytest.raises(grpc.RpcError) as refused:
        internal_stub.GetMarketplaceCredentials(
            request, metadata=((SERVICE_METADATA_KEY, claiming_sync),), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert WALMART_FIELDS["client_secret"] not in (refused.value.details() or "")


@pytest.mark.parametrize("presented", ["user token as service credential", "bearer", "nothing"])
def test_the_internal_rpc_refuses_anything_but_a_service_credential(
    api: Api, internal_stub: auth_pb2_grpc.AuthInternalServiceStub, presented: str
) -> None:
    user_token, request = _request_for(api)
    metadata = {
        "user token as service credential": ((SERVICE_METADATA_KEY, user_token),),
        "bearer": (("authorization", f"Bearer {user_token}"),),
        "nothing": (),
    }[presented]
    with pytest.raises(grpc.RpcError) as refused:
        internal_stub.GetMarketplaceCredentials(request, metadata=metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert WALMART_FIELDS["client_secret"] not in (refused.value.details() or "")
