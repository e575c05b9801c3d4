"""The outside attack run's probes, kept as tests (security review, issue 12).

1. Every public REST route, read from the protos' `google.api.http` options, against every kind
   of token an attacker has: none, malformed, expired, signed with another key, `alg: none`,
   another organization's, that organization's session re-signed for the victim's, and a
   viewer's on write routes. Path variables name a victim organization's real objects; no
   answer carries the victim's data, none is a 5xx, every one is JSON.
2. A seeded fuzzer sends each route malformed requests with a real token: no 5xx, every 4xx a
   JSON error (ATTACK_FUZZ_SEED picks other requests).
3. Marketplace secrets planted through the API, used by syncs that succeed and syncs that fail on
   rejected credentials, never appear in an answer, a log line, a PostgreSQL table (credentials
   are ciphertext only) or a DynamoDB item. Masked forms (last 4 characters) are fine.
4. Every internal RPC the protos declare is unreachable through Envoy, as REST or as gRPC with
   a service credential (test_auth_gateway.py probes one of them).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import grpc
import psycopg
import pytest
from psycopg import sql

from dev.stack import Stack
from gateway.envoy_config import PUBLIC_SERVICES
from marketsync.service_auth import SERVICE_METADATA_KEY, ServiceCredential
from services.auth.credentials import associated_data
from services.auth.vault import Sealed, Vault
from services.catalog.items import product_pk
from tests.integration.attack_support import (
    PASSWORD,
    Fuzzer,
    LogCapture,
    OrgWorld,
    Probe,
    Route,
    Transcript,
    alg_none_token,
    answer_problems,
    assert_org_intact,
    build_org,
    expired_token,
    foreign_data,
    fresh_token,
    malformed_token,
    public_routes,
    resigned,
    services,
    shorten,
    token_of_another_key,
)
from tests.integration.auth_support import Person, person_of
from tests.integration.conftest import Answer, Api, LogTail
from tests.integration.sync_support import (
    Seller,
    account,
    all_products,
    amazon_credentials,
    new_seller,
    start_sync,
    wait_for_sync,
    walmart_credentials,
)

ROUTES = public_routes()
# The services Envoy transcodes; every other service is internal.
PUBLIC = {service for group in PUBLIC_SERVICES.values() for service in group}


# ---- What each route is sent ------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """A victim organization with data, and an outsider who owns an organization of their own."""

    victim: OrgWorld
    outsider: Person


def _scene(api: Api, label: str) -> Scene:
    return Scene(build_org(api, label), person_of(api.register()))


BodyOf = Callable[[Scene], Any]
PathOf = Callable[[Scene], dict[str, str]]

DENIED = frozenset({401, 403, 404})
FORBIDDEN = frozenset({403})
OK = frozenset({200})


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _no_path(scene: Scene) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class RouteCase:
    """How to call a route, and what the victim's viewer and the outsider must get.

    `viewer`: the statuses the victim organization's viewer may get. `outsider`: those the
    outsider may get with their own token (None: any answer about their own organization);
    `outsider_body` replaces `body` for the outsider, where the body is what attacks."""

    viewer: frozenset[int]
    path: PathOf = _no_path
    body: BodyOf | None = None
    public: bool = False
    outsider: frozenset[int] | None = None
    outsider_body: BodyOf | None = None


def _empty(scene: Scene) -> dict[str, Any]:
    return {}


def _registration(scene: Scene) -> dict[str, Any]:
    n = _unique()
    return {
        "email": f"probe-{n}@example.com",
        "password": PASSWORD,
        "name": "Probe",
        "organization_name": f"Probe {n}",
    }


def _outsider_login(scene: Scene) -> dict[str, Any]:
    return {"email": scene.outsider.email, "password": scene.outsider.password}


def _outsider_login_into_victim(scene: Scene) -> dict[str, Any]:
    return {**_outsider_login(scene), "organization_id": scene.victim.organization_id}


def _victim_invitation(scene: Scene) -> dict[str, str]:
    return {"invitation_id": scene.victim.invitation_id}


def _victim_member(scene: Scene) -> dict[str, str]:
    return {"user_id": scene.victim.member.user_id}


def _victim_sku(scene: Scene) -> dict[str, str]:
    return {"sku": scene.victim.sku}


def _walmart(scene: Scene) -> dict[str, str]:
    return {"marketplace": "walmart"}


def _product(scene: Scene) -> dict[str, Any]:
    return {"title": "Not the victim's", "price": "9.99", "currency": "USD"}


ROUTE_CASES: dict[str, RouteCase] = {
    "AuthService.Register": RouteCase(viewer=OK, body=_registration, public=True),
    "AuthService.Login": RouteCase(
        viewer=OK,
        body=_outsider_login,
        public=True,
        outsider=DENIED,
        outsider_body=_outsider_login_into_victim,
    ),
    "AuthService.Logout": RouteCase(viewer=OK, body=_empty),
    "AuthService.GetMe": RouteCase(viewer=OK),
    "AuthService.SwitchOrganization": RouteCase(
        viewer=OK, body=lambda s: {"organization_id": s.victim.organization_id}, outsider=DENIED
    ),
    "AuthService.ListSessions": RouteCase(viewer=OK),
    "AuthService.RevokeSession": RouteCase(
        viewer=DENIED,
        path=lambda s: {"session_id": s.victim.owner_session_id},
        outsider=DENIED,
    ),
    "AuthService.CreateOrganization": RouteCase(
        viewer=OK, body=lambda s: {"name": f"Probe {_unique()}"}
    ),
    "AuthService.ListMembers": RouteCase(viewer=OK),
    "AuthService.InviteMember": RouteCase(
        viewer=FORBIDDEN,
        body=lambda s: {"email": f"probe-invitee-{_unique()}@example.com", "role": "member"},
    ),
    "AuthService.ListInvitations": RouteCase(viewer=FORBIDDEN),
    "AuthService.RevokeInvitation": RouteCase(
        viewer=FORBIDDEN, path=_victim_invitation, outsider=DENIED
    ),
    "AuthService.ListMyInvitations": RouteCase(viewer=OK),
    "AuthService.AcceptInvitation": RouteCase(
        viewer=DENIED, path=_victim_invitation, body=_empty, outsider=DENIED
    ),
    "AuthService.DeclineInvitation": RouteCase(
        viewer=DENIED, path=_victim_invitation, body=_empty, outsider=DENIED
    ),
    "AuthService.UpdateMemberRole": RouteCase(
        viewer=FORBIDDEN, path=_victim_member, body=lambda s: {"role": "admin"}, outsider=DENIED
    ),
    "AuthService.RemoveMember": RouteCase(viewer=FORBIDDEN, path=_victim_member, outsider=DENIED),
    "CredentialsService.PutCredentials": RouteCase(
        viewer=FORBIDDEN,
        path=_walmart,
        body=lambda s: {"credentials": walmart_credentials(account("probe-client", 1))},
    ),
    "CredentialsService.ListCredentials": RouteCase(viewer=FORBIDDEN),
    "CredentialsService.DeleteCredentials": RouteCase(viewer=FORBIDDEN, path=_walmart),
    "CatalogService.ListProducts": RouteCase(viewer=OK),
    "CatalogService.GetProduct": RouteCase(viewer=OK, path=_victim_sku),
    "CatalogService.UpsertProduct": RouteCase(viewer=FORBIDDEN, path=_victim_sku, body=_product),
    "CatalogService.DeleteProduct": RouteCase(viewer=FORBIDDEN, path=_victim_sku),
    "CatalogService.BatchUpsertProducts": RouteCase(
        viewer=FORBIDDEN, body=lambda s: {"products": [{**_product(s), "sku": s.victim.sku}]}
    ),
    "CatalogService.BatchDeleteProducts": RouteCase(
        viewer=FORBIDDEN, body=lambda s: {"skus": [s.victim.sku]}
    ),
    "CatalogService.GetPriceHistory": RouteCase(viewer=OK, path=_victim_sku),
    "SyncService.StartSync": RouteCase(viewer=FORBIDDEN, body=lambda s: {"marketplace": "walmart"}),
    "SyncService.ListSyncLogs": RouteCase(viewer=OK),
    "SyncService.GetSync": RouteCase(
        viewer=OK, path=lambda s: {"sync_id": s.victim.sync_id}, outsider=DENIED
    ),
}


def test_every_public_route_has_a_case() -> None:
    """A route added to a proto fails here until it is given a case (and so is probed)."""
    routed = {route.name for route in ROUTES}
    assert routed - set(ROUTE_CASES) == set(), "routes without a case in ROUTE_CASES"
    assert set(ROUTE_CASES) - routed == set(), "cases of routes the protos no longer have"
    assert {route.service for route in ROUTES} == PUBLIC, (
        "the services with REST routes are not those Envoy transcodes"
    )


# ---- Internal RPCs through Envoy --------------------------------------------------------------

INTERNAL_RPCS = [
    f"/{service.full_name}/{rpc.name}"
    for service in services()
    if service.full_name not in PUBLIC
    for rpc in service.methods
]


@pytest.mark.parametrize("path", INTERNAL_RPCS)
def test_no_internal_rpc_is_reachable_through_envoy(api: Api, stack: Stack, path: str) -> None:
    """test_auth_gateway.py probes one internal RPC; this probes every one the protos declare,
    as REST and as gRPC with a valid service credential: neither reaches a service."""
    assert INTERNAL_RPCS, "the protos declare no internal RPC"
    credential = ServiceCredential(stack.service_key("sync"), "sync").token()
    headers = {SERVICE_METADATA_KEY: credential}
    answer = api.client.post(path, json={}, headers=headers)
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == 5 and answer.json()["message"], answer.text
    with grpc.insecure_channel(stack.gateway_url.removeprefix("http://")) as channel:
        call = channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", metadata=((SERVICE_METADATA_KEY, credential),), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, refused.value


# ---- 1. The token matrix ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene(api: Api) -> Scene:
    return _scene(api, "Victim")


TokenMaker = Callable[[Api, Stack, Scene], str | None]


def _outsider_resigned_for_victim(api: Api, stack: Stack, scene: Scene) -> str:
    if stack.env.get("JWT_ALGORITHM", "HS256") != "HS256":
        pytest.skip("re-signing needs the HS256 secret")
    token = fresh_token(api, scene.outsider)
    return resigned(token, stack.env["JWT_SECRET"], org=scene.victim.organization_id, role="owner")


# Each kind of token, made afresh for every request (a logout or a revoked session in one
# request does not change the next).
TOKENS: dict[str, TokenMaker] = {
    "no token": lambda api, stack, scene: None,
    "malformed token": lambda api, stack, scene: malformed_token(scene.victim.owner.token),
    "expired token": lambda api, stack, scene: expired_token(
        scene.victim.owner.token, stack.env["JWT_SECRET"]
    ),
    "token signed with another key": lambda api, stack, scene: token_of_another_key(
        scene.victim.owner.token
    ),
    "alg none token": lambda api, stack, scene: alg_none_token(scene.victim.owner.token),
    "outsider's token": lambda api, stack, scene: fresh_token(api, scene.outsider),
    "outsider's session re-signed for the victim's organization": _outsider_resigned_for_victim,
    "victim's viewer's token": lambda api, stack, scene: fresh_token(
        api, scene.victim.viewer, scene.victim.organization_id
    ),
}
OUTSIDER_TOKENS = ("outsider's token", "outsider's session re-signed for the victim's organization")
UNAUTHENTICATED = frozenset({401})
# Register and login read no token: a bad one is ignored (200) or refused (401).
IGNORED_OR_REFUSED = frozenset({200, 401})


def _expected(case: RouteCase, kind: str) -> frozenset[int] | None:
    """The statuses a route may answer a kind of token (None: any below 500)."""
    if kind == "victim's viewer's token":
        return case.viewer
    if kind == "outsider's token":
        return case.outsider
    if kind in OUTSIDER_TOKENS:
        if case.outsider is not None:
            return case.outsider
        return IGNORED_OR_REFUSED if case.public else DENIED
    if kind == "no token":
        return OK if case.public else UNAUTHENTICATED
    return IGNORED_OR_REFUSED if case.public else UNAUTHENTICATED


def _call(
    api: Api, route: Route, case: RouteCase, scene: Scene, kind: str, token: str | None
) -> tuple[str, Any, Answer]:
    make_body = case.outsider_body if kind in OUTSIDER_TOKENS and case.outsider_body else case.body
    body = make_body(scene) if make_body else None
    path = route.path(case.path(scene))
    return path, body, api.call(route.method, path, body, token=token)


@pytest.mark.parametrize("kind", TOKENS)
def test_every_route_refuses_tokens_that_do_not_reach_the_victims_data(
    api: Api, stack: Stack, scene: Scene, kind: str
) -> None:
    failures = []
    for route in ROUTES:
        case = ROUTE_CASES.get(route.name)
        if case is None:
            failures.append(f"{route.label}: no case in ROUTE_CASES")
            continue
        token = TOKENS[kind](api, stack, scene)
        path, body, answer = _call(api, route, case, scene, kind, token)
        problems = answer_problems(answer)
        expected = _expected(case, kind)
        if expected is not None and answer.status not in expected:
            problems.append(f"status {answer.status}, expected one of {sorted(expected)}")
        if kind != "victim's viewer's token":
            problems += foreign_data(answer.body, scene.victim)
        if problems:
            failures.append(
                f"{route.name}: {route.method} {path} body={shorten(body)} -> {answer.status} "
                f"{shorten(answer.body)}: {'; '.join(problems)}"
            )
    assert failures == [], "\n".join(failures)
    assert_org_intact(api, scene.victim)


# ---- 2. Fuzzing -------------------------------------------------------------------------------

FUZZ_SEED = int(os.environ.get("ATTACK_FUZZ_SEED", "1203"))
PROBES_PER_ROUTE = 15


@pytest.fixture(scope="module")
def fuzz_scene(api: Api) -> Scene:
    """A scene of its own: fuzzing may change or delete what its requests name."""
    return _scene(api, "Fuzz")


def _refused_as_grpc(probe: Probe, answer: Answer) -> bool:
    """A client that says it speaks gRPC (`application/grpc...`) to a REST path gets Envoy's gRPC
    form of 404: HTTP 200, an empty body and a non-zero grpc-status. It reached no service."""
    content_type = probe.headers.get("content-type", "")
    return (
        content_type.startswith("application/grpc")
        and not content_type.startswith("application/grpc-web")
        and answer.status == 200
        and answer.headers.get("content-type", "").startswith("application/grpc")
        and answer.headers.get("grpc-status", "0") != "0"
        and not answer.body
    )


@pytest.mark.parametrize("route", ROUTES, ids=[route.label for route in ROUTES])
def test_malformed_requests_never_get_a_server_error(
    api: Api, fuzz_scene: Scene, route: Route
) -> None:
    case = ROUTE_CASES[route.name]
    rng = random.Random(f"{FUZZ_SEED}:{route.label}")
    body = case.body(fuzz_scene) if case.body else None
    fuzzer = Fuzzer(route, case.path(fuzz_scene), body, rng)
    failures = []
    for probe in fuzzer.probes(PROBES_PER_ROUTE):
        token = fresh_token(api, fuzz_scene.victim.owner)
        answer = probe.send(api, token)
        problems = [] if _refused_as_grpc(probe, answer) else answer_problems(answer)
        if problems:
            failures.append(
                f"{probe.describe()} -> {answer.status} {shorten(answer.body)}: "
                f"{'; '.join(problems)}"
            )
    assert failures == [], f"seed {FUZZ_SEED}:\n" + "\n".join(failures)


# ---- 3. Planted secrets -----------------------------------------------------------------------


@dataclass
class Planted:
    """Secrets saved through the API, the organizations holding them, and what recorded it."""

    secrets: dict[str, str]
    sellers: dict[str, Seller]
    syncs: dict[str, dict[str, Any]]
    transcript: Transcript
    logs: LogCapture


def _put_credentials(api: Api, seller: Seller, marketplace: str, fields: dict[str, str]) -> Answer:
    return api.call(
        "PUT", f"/api/credentials/{marketplace}", {"credentials": fields}, token=seller.token
    )


# An organization for each way a secret is used; "other" saves secrets it then deletes or that
# are refused. The others' first word is the marketplace they sync.
PLANTED_SELLERS = (
    "amazon", "walmart", "amazon rejected", "amazon revoked", "walmart rejected", "other",
)  # fmt: skip


@pytest.fixture(scope="module")
def planted(api: Api, stack: Stack) -> Iterator[Planted]:
    tag = uuid.uuid4().hex
    secrets = {
        "amazon refresh token": account(f"Atzr|PLANTED-refresh-{tag}", 3),
        "amazon lwa client secret": f"PLANTED-lwa-secret-{tag}",
        "walmart client secret, replaced": f"PLANTED-walmart-old-{tag}",
        "walmart client secret": f"PLANTED-walmart-secret-{tag}",
        "amazon refresh token beside a rejected secret": account(f"Atzr|PLANTED-r2-{tag}", 3),
        "amazon lwa client secret, rejected": f"PLANTED-invalid-lwa-{tag}",
        "amazon refresh token, revoked": f"Atzr|PLANTED-revoked-{tag}",
        "amazon lwa client secret beside a revoked token": f"PLANTED-lwa-3-{tag}",
        "walmart client secret, rejected": f"PLANTED-invalid-walmart-{tag}",
        "walmart client secret, deleted": f"PLANTED-walmart-deleted-{tag}",
        "amazon lwa client secret, refused (a field missing)": f"PLANTED-refused-{tag}",
        "a secret for an unknown marketplace": f"PLANTED-ebay-{tag}",
    }
    s = secrets
    assert isinstance(stack.log_sink, LogTail)
    with LogCapture(stack.log_sink) as logs, Transcript(api.client) as transcript:
        sellers = {name: new_seller(api) for name in PLANTED_SELLERS}
        saves = [
            ("amazon", "amazon", amazon_credentials(
                s["amazon refresh token"], lwa_client_secret=s["amazon lwa client secret"])),
            ("walmart", "walmart", walmart_credentials(
                account("planted-client", 3),
                client_secret=s["walmart client secret, replaced"])),
            ("walmart", "walmart", walmart_credentials(
                account("planted-client", 3), client_secret=s["walmart client secret"])),
            ("amazon rejected", "amazon", amazon_credentials(
                s["amazon refresh token beside a rejected secret"],
                lwa_client_secret=s["amazon lwa client secret, rejected"])),
            ("amazon revoked", "amazon", amazon_credentials(
                s["amazon refresh token, revoked"],
                lwa_client_secret=s["amazon lwa client secret beside a revoked token"])),
            ("walmart rejected", "walmart", walmart_credentials(
                account("planted-client", 3),
                client_secret=s["walmart client secret, rejected"])),
            ("other", "walmart", walmart_credentials(
                account("planted-client", 3), client_secret=s["walmart client secret, deleted"])),
        ]  # fmt: skip
        for seller_name, marketplace, fields in saves:
            saved = _put_credentials(api, sellers[seller_name], marketplace, fields)
            assert saved.status == 200, saved.body
        other = sellers["other"]
        assert api.call("DELETE", "/api/credentials/walmart", token=other.token).status == 200
        refused = {
            "lwa_app_id": "amzn1.application-oa2-client.x",
            "lwa_client_secret": s["amazon lwa client secret, refused (a field missing)"],
            "refresh_token": "Atzr|x",
        }
        assert _put_credentials(api, other, "amazon", refused).status == 400
        unknown = {"client_id": "x", "client_secret": s["a secret for an unknown marketplace"]}
        assert _put_credentials(api, other, "ebay", unknown).status == 400

        started = {
            name: start_sync(api, seller.token, name.split()[0])
            for name, seller in sellers.items()
            if name != "other"
        }
        syncs = {
            name: wait_for_sync(api, sellers[name].token, sync_id)
            for name, sync_id in started.items()
        }
        for seller in sellers.values():
            for path in ("/api/credentials", "/api/sync/logs", "/api/auth/me"):
                assert api.call("GET", path, token=seller.token).status == 200
            all_products(api, seller.token)
        # The gateway's access log line of a last request: every line before it is in too.
        barrier = f"/api/log-barrier-{tag}"
        assert api.call("GET", barrier).status == 404
        logs.wait_for(barrier, timeout=30)
        yield Planted(secrets, sellers, syncs, transcript, logs)


def test_planted_syncs_ran_as_meant(planted: Planted) -> None:
    """The leak search below is only worth something if the secrets were used, and rejected."""
    outcomes = {name: log["status"] for name, log in planted.syncs.items()}
    assert outcomes == {
        "amazon": "succeeded",
        "walmart": "succeeded",
        "amazon rejected": "failed",
        "amazon revoked": "failed",
        "walmart rejected": "failed",
    }, planted.syncs
    for name in ("amazon rejected", "amazon revoked", "walmart rejected"):
        assert planted.syncs[name]["error"], planted.syncs[name]


def _occurrences(text: str, secrets: dict[str, str]) -> list[str]:
    """Secrets found in the text, whole or but for their last 4 characters (what a masked form
    shows); each also as the hex a bytea column prints."""
    found = []
    for name, secret in secrets.items():
        for form in (secret[:-4], secret[:-4].encode().hex()):
            if form.lower() in text.lower():
                found.append(f"{name} ({secret!r})")
                break
    return found


def _masked(value: str) -> str:
    return "*" * (len(value) - 4) + value[-4:]


def test_no_planted_secret_is_in_any_answer(planted: Planted) -> None:
    text = "\n".join(planted.transcript.entries)
    # The masked forms of the saved secrets were answered: the transcript holds those answers.
    for name in ("amazon lwa client secret", "walmart client secret"):
        assert _masked(planted.secrets[name]) in text
    leaks = _occurrences(text, planted.secrets)
    assert leaks == [], leaks


def test_no_planted_secret_is_in_any_log_line(planted: Planted, stack: Stack) -> None:
    text = planted.logs.text()
    # What was searched: the sync service's lines of every planted sync, the gateway's lines.
    for log in planted.syncs.values():
        assert f'"sync_id": {log["sync_id"]},' in text, f"sync {log['sync_id']} was not logged"
    assert any(line.startswith("gateway") for line in text.splitlines())
    leaks = _occurrences(text, planted.secrets)
    assert leaks == [], leaks
    postgres_log = stack.data_dir / "postgres" / "log"
    if postgres_log.exists():
        leaks = _occurrences(postgres_log.read_text(errors="replace"), planted.secrets)
        assert leaks == [], ("PostgreSQL's log", leaks)


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [
        (str(schema), str(table))
        for schema, table in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    ]


def test_no_planted_secret_is_in_any_postgresql_table(planted: Planted, stack: Stack) -> None:
    leaks = []
    with psycopg.connect(stack.env["CRED_DATABASE_URL"]) as conn:
        tables = _tables(conn)
        assert ("public", "api_credentials") in tables or any(
            table == "api_credentials" for _, table in tables
        ), tables
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            rows = "\n".join(str(row[0]) for row in conn.execute(query))
            leaks += [f"{schema}.{table}: {found}" for found in _occurrences(rows, planted.secrets)]
    assert leaks == [], leaks


def test_stored_credentials_are_ciphertext_that_opens_to_the_saved_secrets(
    planted: Planted, stack: Stack
) -> None:
    vault = Vault.from_setting(stack.env["CREDENTIALS_ENCRYPTION_KEY"])
    ids = {name: int(seller.organization_id) for name, seller in planted.sellers.items()}
    with psycopg.connect(stack.env["CRED_DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT organization_id, marketplace, key_id, nonce, ciphertext FROM api_credentials"
            " WHERE organization_id = ANY(%s)",
            (list(ids.values()),),
        ).fetchall()
    opened = {}
    for organization_id, marketplace, key_id, nonce, ciphertext in rows:
        sealed = Sealed(key_id, bytes(nonce), bytes(ciphertext))
        plaintext = vault.open(sealed, associated_data(organization_id, marketplace))
        opened[(organization_id, marketplace)] = json.loads(plaintext)
    s = planted.secrets
    assert {key: fields.get("client_secret", fields.get("lwa_client_secret")) for key, fields
            in opened.items()} == {
        (ids["amazon"], "amazon"): s["amazon lwa client secret"],
        (ids["walmart"], "walmart"): s["walmart client secret"],
        (ids["amazon rejected"], "amazon"): s["amazon lwa client secret, rejected"],
        (ids["amazon revoked"], "amazon"): s["amazon lwa client secret beside a revoked token"],
        (ids["walmart rejected"], "walmart"): s["walmart client secret, rejected"],
    }  # fmt: skip


def test_no_planted_secret_is_in_any_dynamodb_item(planted: Planted, stack: Stack) -> None:
    client = boto3.client(
        "dynamodb",
        region_name=stack.env["AWS_REGION"],
        endpoint_url=stack.env["DYNAMODB_ENDPOINT_URL"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
    )
    table = stack.env["PRODUCTS_TABLE_NAME"]
    items: list[dict[str, Any]] = []
    for seller in planted.sellers.values():
        for product in all_products(Api(stack.gateway_url), seller.token):
            pk = product_pk(int(seller.organization_id), product["sku"])
            pages = client.get_paginator("query").paginate(
                TableName=table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
            )
            items += [item for page in pages for item in page["Items"]]
    assert items, "the successful syncs wrote no item"
    leaks = _occurrences(json.dumps(items, default=str), planted.secrets)
    assert leaks == [], leaks


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/sync", {"marketplace": "x" * 100_000}),
        ("POST", "/api/organization/members", {"email": "x" * 100_000, "role": "member"}),
        ("POST", "/api/auth/register", {"email": "x" * 100_000, "password": "p" * 12}),
    ],
)
def test_a_huge_invalid_value_gets_a_short_400_not_a_server_error(
    api: Api, fuzz_scene: Scene, method: str, path: str, body: dict[str, str]
) -> None:
    answer = api.call(method, path, body, token=fresh_token(api, fuzz_scene.victim.owner))
    assert answer.status == 400, shorten(answer.body)
    assert len(answer.body["message"]) <= 1000, shorten(answer.body)
