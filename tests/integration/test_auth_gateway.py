"""The auth service's edges through Envoy: bad tokens, internal paths, malformed and oversized
requests, unknown paths, health, and PostgreSQL restarting under a running service."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pgserver
import pytest

from dev.stack import Stack
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.service_auth import SERVICE_METADATA_KEY, ServiceCredential
from tests.integration.auth_support import WALMART_FIELDS, assert_error, login
from tests.integration.conftest import Api

MAX_REQUEST_BYTES = 8 * 1024 * 1024
PG_CTL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _forged(token: str, secret: str, other_token: str) -> str:
    """The token's header and signature around a payload naming another user."""
    header, _, signature = token.split(".")
    return ".".join(
        (header, _b64({**_claims(token), "sub": _claims(other_token)["sub"]}), signature)
    )


def _expired(token: str, secret: str, other_token: str) -> str:
    now = int(time.time())
    return jwt.encode({**_claims(token), "iat": now - 7200, "exp": now - 60}, secret, "HS256")


def _other_key(token: str, secret: str, other_token: str) -> str:
    return jwt.encode(_claims(token), "another-key-entirely-" + "x" * 40, algorithm="HS256")


def _alg_none(token: str, secret: str, other_token: str) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(token))}."


def _hs512(token: str, secret: str, other_token: str) -> str:
    return jwt.encode(_claims(token), secret, algorithm="HS512")


def _other_users_session(token: str, secret: str, other_token: str) -> str:
    """Properly signed, but naming a session that belongs to someone else."""
    return jwt.encode({**_claims(token), "sid": _claims(other_token)["sid"]}, secret, "HS256")


def _missing_claim(token: str, secret: str, other_token: str) -> str:
    claims = {k: v for k, v in _claims(token).items() if k != "sid"}
    return jwt.encode(claims, secret, algorithm="HS256")


def _unknown_role(token: str, secret: str, other_token: str) -> str:
    return jwt.encode({**_claims(token), "role": "root"}, secret, algorithm="HS256")


def _garbage(token: str, secret: str, other_token: str) -> str:
    return "garbage"


def _garbage_segments(token: str, secret: str, other_token: str) -> str:
    return "abc.def.ghi"


BAD_TOKENS: dict[str, Callable[[str, str, str], str]] = {
    "forged payload": _forged,
    "expired": _expired,
    "signed with another key": _other_key,
    "alg none": _alg_none,
    "HS512 with the same secret": _hs512,
    "another user's session": _other_users_session,
    "missing sid": _missing_claim,
    "unknown role": _unknown_role,
    "garbage": _garbage,
    "garbage segments": _garbage_segments,
}
PROTECTED_ROUTES = (
    ("GET", "/api/auth/me", None),
    ("GET", "/api/organization/members", None),
    ("GET", "/api/credentials", None),
    ("POST", "/api/organizations", {"name": "Should Not Exist"}),
)


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_bad_token_gets_401_json(
    api: Api, stack: Stack, make: Callable[[str, str, str], str]
) -> None:
    token = api.register()["token"]
    other = api.register()["token"]
    bad = make(token, stack.env["JWT_SECRET"], other)
    for method, path, body in PROTECTED_ROUTES:
        assert_error(api.call(method, path, body, token=bad), 401)
    assert api.call("GET", "/api/auth/me", token=token).status == 200


def test_an_expired_token_is_told_so(api: Api, stack: Stack) -> None:
    token = api.register()["token"]
    bad = _expired(token, stack.env["JWT_SECRET"], token)
    assert_error(api.call("GET", "/api/auth/me", token=bad), 401, "expired")


@pytest.mark.parametrize(
    "authorization", ["{token}", "Basic {token}", "Bearer", "Token {token}", ""]
)
def test_a_request_without_a_bearer_token_gets_401_json(api: Api, authorization: str) -> None:
    token = api.register()["token"]
    headers = {"authorization": authorization.format(token=token)} if authorization else {}
    for method, path, body in PROTECTED_ROUTES:
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == 16 and response.json()["message"]


def test_the_token_of_a_revoked_session_gets_401_json(api: Api) -> None:
    token = api.register()["token"]
    assert api.call("POST", "/api/auth/logout", {}, token=token).status == 200
    for method, path, body in PROTECTED_ROUTES:
        assert_error(api.call(method, path, body, token=token), 401, "log in")


INTERNAL_PATH = "/marketsync.auth.v1.AuthInternalService/GetMarketplaceCredentials"


def test_internal_paths_are_not_routed_as_rest(api: Api, stack: Stack) -> None:
    registered = api.register()
    credential = ServiceCredential(stack.service_key("sync"), "sync").token()
    body = {"organization_id": registered["organization"]["id"], "marketplace": "walmart"}
    response = api.client.post(
        INTERNAL_PATH,
        json=body,
        headers={
            "authorization": f"Bearer {registered['token']}",
            SERVICE_METADATA_KEY: credential,
        },
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == 5 and response.json()["message"]


def test_internal_paths_are_not_routed_as_grpc(api: Api, stack: Stack) -> None:
    """A gRPC client gets Envoy's gRPC form of 404 (UNIMPLEMENTED), even with a valid
    service credential: the request never reaches auth."""
    registered = api.register()
    assert api.call(
        "PUT", "/api/credentials/walmart", {"credentials": WALMART_FIELDS},
        token=registered["token"],
    ).status == 200  # fmt: skip
    credential = ServiceCredential(stack.service_key("sync"), "sync").token()
    raw = api.client.post(
        INTERNAL_PATH,
        content=b"\x00\x00\x00\x00\x00",
        headers={"content-type": "application/grpc", "te": "trailers"},
    )
    assert raw.headers.get("grpc-status") == "12" or raw.status_code == 404, raw.headers
    assert not raw.content
    gateway = stack.gateway_url.removeprefix("http://")
    request = auth_pb2.GetMarketplaceCredentialsRequest(
        organization_id=int(registered["organization"]["id"]), marketplace="walmart"
    )
    with grpc.insecure_channel(gateway) as channel:
        stub = auth_pb2_grpc.AuthInternalServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetMarketplaceCredentials(
                request, metadata=((SERVICE_METADATA_KEY, credential),), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert WALMART_FIELDS["client_secret"] not in (refused.value.details() or "")


MALFORMED: list[tuple[str, str, bytes]] = [
    ("POST", "/api/auth/login", b"{not json"),
    ("POST", "/api/auth/login", b'{"email": "a@example.com", "password": '),
    ("POST", "/api/auth/login", b"[1, 2, 3]"),
    ("POST", "/api/auth/login", b'"a string"'),
    ("POST", "/api/auth/register", b"\xff\xfe\x00garbage"),
    ("POST", "/api/auth/login", b'{"email": ["a@example.com"], "password": "x"}'),
    ("POST", "/api/auth/login", b'{"email": {"x": 1}, "password": "long enough"}'),
    ("POST", "/api/auth/login", b'{"email": "a@example.com", "organization_id": "abc"}'),
    ("POST", "/api/auth/login", b'{"email": "a@example.com", "organization_id": 1.5}'),
    ("POST", "/api/auth/register", b'{"email": "a@example.com", "password": true}'),
]
MALFORMED_WITH_TOKEN: list[Any] = [
    ("PUT", "/api/credentials/walmart", b'{"credentials": "client_id=abc"}'),
    ("PUT", "/api/credentials/walmart", b'{"credentials": ["client_id"]}'),
    # Envoy transcodes an object given as a map<string,string> value into a message that does
    # not parse: the service must answer 400, not grpc's own UNKNOWN (a 500).
    ("PUT", "/api/credentials/walmart", b'{"credentials": {"client_id": {"x": 1}}}'),
    ("PUT", "/api/credentials/walmart", b"{broken"),
    ("POST", "/api/auth/switch-organization", b'{"organization_id": "not-a-number"}'),
    ("POST", "/api/auth/switch-organization", b'{"organization_id": -1}'),
    ("PATCH", "/api/organization/members/abc", b'{"role": "viewer"}'),
    ("PATCH", "/api/organization/members/99999999999999999999", b'{"role": "viewer"}'),
    ("DELETE", "/api/auth/sessions/not-a-number", b""),
    ("POST", "/api/organization/members", b'{"email": 12, "role": ["admin"]}'),
    ("POST", "/api/organizations", b'{"name": null, "extra": }'),
]


def _assert_client_error(status: int, text: str) -> None:
    assert 400 <= status < 500, (status, text)
    body = json.loads(text)
    assert isinstance(body["code"], int) and body["code"] != 0, body
    assert isinstance(body["message"], str) and body["message"], body


@pytest.mark.parametrize(("method", "path", "content"), MALFORMED)
def test_malformed_or_mistyped_bodies_get_4xx_json(
    api: Api, method: str, path: str, content: bytes
) -> None:
    response = api.client.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    _assert_client_error(response.status_code, response.text)


@pytest.mark.parametrize(("method", "path", "content"), MALFORMED_WITH_TOKEN)
def test_malformed_or_mistyped_bodies_with_a_token_get_4xx_json(
    api: Api, method: str, path: str, content: bytes
) -> None:
    token = api.register()["token"]
    response = api.client.request(
        method,
        path,
        content=content,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    _assert_client_error(response.status_code, response.text)


def _oversized_json() -> bytes:
    filler = "x" * (MAX_REQUEST_BYTES + 1024)
    return json.dumps({"email": "big@example.com", "password": filler, "name": "B"}).encode()


def test_an_oversized_body_gets_4xx_json(api: Api) -> None:
    response = api.client.post(
        "/api/auth/register",
        content=_oversized_json(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    _assert_client_error(response.status_code, response.text)


def test_an_oversized_chunked_body_gets_4xx_json(api: Api) -> None:
    body = _oversized_json()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1024 * 1024):
            yield body[start : start + 1024 * 1024]

    response = api.client.post(
        "/api/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_client_error(response.status_code, response.text)


def test_unknown_fields_are_ignored(api: Api) -> None:
    registered = api.register(favourite_colour="teal")
    answer = api.call(
        "POST", "/api/auth/login",
        {"email": registered["user"]["email"], "password": registered["password"],
         "remember_me": True, "nested": {"deep": [1, 2]}},
    )  # fmt: skip
    assert answer.status == 200, answer.body
    saved = api.call(
        "PUT", "/api/credentials/walmart",
        {"credentials": WALMART_FIELDS, "is_active": False, "organization_id": "1"},
        token=registered["token"],
    )  # fmt: skip
    assert saved.status == 200, saved.body
    assert saved.body["is_active"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nothing-here"),
        ("GET", "/api/auth"),
        ("POST", "/api/auth/me"),
        ("PUT", "/api/auth/login"),
        ("GET", "/"),
        ("DELETE", "/api/credentials"),
    ],
)
def test_unknown_paths_get_404_json(api: Api, method: str, path: str) -> None:
    token = api.register()["token"]
    assert_error(api.call(method, path, token=token), 404)
    assert_error(api.call(method, path), 404)


def test_healthz_answers_200(api: Api) -> None:
    answer = api.call("GET", "/healthz")
    assert answer.status == 200, answer.body


# ---- PostgreSQL restarting -------------------------------------------------------------------


def _restart_postgres(stack: Stack) -> None:
    """Restart the embedded server as pgserver runs it (as its own system user under root)."""
    pgdata = stack.data_dir / "postgres"
    postmaster_before = _postmaster_pid(pgdata)
    subprocess.run(
        [str(PG_CTL), "-D", str(pgdata), "-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
        user="pgserver" if os.geteuid() == 0 else None,
    )
    assert _postmaster_pid(pgdata) != postmaster_before


def _postmaster_pid(pgdata: Path) -> str:
    return (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]


def test_the_service_survives_postgresql_restarting(api: Api, stack: Stack) -> None:
    registered = api.register()
    email, password = registered["user"]["email"], registered["password"]
    # Fill the pool with connections that the restart will break.
    for _ in range(3):
        assert api.call("GET", "/api/auth/me", token=registered["token"]).status == 200

    _restart_postgres(stack)

    me = api.call("GET", "/api/auth/me", token=registered["token"])
    if me.status == 503:
        # Under load the pool may still be reconnecting: a 503 to try again, never a 500.
        assert me.body["message"] == "the database is unavailable; try again shortly"
        me = api.call("GET", "/api/auth/me", token=registered["token"])
    assert me.status == 200, me.body
    assert login(api, email, password).status == 200
    saved = api.call(
        "PUT", "/api/credentials/walmart", {"credentials": WALMART_FIELDS},
        token=registered["token"],
    )  # fmt: skip
    assert saved.status == 200, saved.body
    assert api.register()["token"]


@pytest.mark.parametrize(
    "headers",
    [
        {"grpc-timeout": "1n"},
        {"grpc-timeout": "garbage"},
        {"grpc-encoding": "bogus"},
        {"grpc-previous-rpc-attempts": "x"},
    ],
)
def test_grpc_protocol_headers_from_rest_clients_are_dropped(
    api: Api, headers: dict[str, str]
) -> None:
    owner = api.register()
    answer = api.client.get(
        "/api/auth/me", headers={**headers, "authorization": f"Bearer {owner['token']}"}
    )
    assert answer.status_code == 200, answer.text


def test_oversized_headers_get_431_json(api: Api) -> None:
    answer = api.client.get("/api/auth/me", headers={"x-pad": "p" * 20_000})
    assert answer.status_code == 431
    _assert_client_error(answer.status_code, answer.text)


def test_dot_segments_cannot_reach_an_internal_service(api: Api) -> None:
    answer = api.client.post(
        "/marketsync.auth.v1.AuthService/../marketsync.auth.v1.AuthInternalService/ListDueSyncs",
        headers={"content-type": "application/json"},
        content=b"{}",
    )
    _assert_client_error(answer.status_code, answer.text)
