"""User tokens in EdDSA mode, end to end, on a stack of its own started as Kubernetes runs it
(JWT_ALGORITHM=EdDSA): auth alone holds the signing key, every service verifies with auth's
public key, and no other key makes a token. The session's stack runs HS256 with JWT_SECRET, the
REST contract's mode, where test_auth_gateway.py tries its bad tokens."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator

import jwt
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dev.stack import Stack, free_port, start_stack
from marketsync.errors import Unauthenticated
from marketsync.identity import verify_user_token
from marketsync.keys import (
    PublicKeys,
    key_id,
    private_key_from_text,
    public_key_text,
    public_keys_from_text,
)
from tests.integration.auth_support import assert_error
from tests.integration.conftest import Api

# One route of each service: auth, catalog, sync.
ROUTES = ("/api/auth/me", "/api/products", "/api/sync/logs")


@pytest.fixture(scope="module")
def eddsa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    output = io.StringIO()
    overrides = {
        "JWT_ALGORITHM": "EdDSA",
        "GATEWAY_PORT": str(free_port()),
        "BCRYPT_ROUNDS": "4",
        "SYNC_SCHEDULE_INTERVAL_SECONDS": "0",
    }
    try:
        stack = start_stack(tmp_path_factory.mktemp("eddsa"), overrides, log_sink=output)
    except Exception:
        sys.stderr.write(output.getvalue()[-20_000:])
        raise
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def eddsa_api(eddsa_stack: Stack) -> Api:
    return Api(eddsa_stack.gateway_url)


def _auth_key(stack: Stack) -> Ed25519PrivateKey:
    return private_key_from_text(stack.env_of("auth")["JWT_PRIVATE_KEY"])


def test_tokens_are_signed_by_auth_and_accepted_by_every_service(
    eddsa_stack: Stack, eddsa_api: Api
) -> None:
    token = eddsa_api.register()["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == key_id(_auth_key(eddsa_stack).public_key())
    for route in ROUTES:
        assert eddsa_api.call("GET", route, token=token).status == 200, route


def test_in_hs256_mode_jwt_secret_is_the_key_as_the_contract_says(stack: Stack, api: Api) -> None:
    """The session's stack, `make run`'s default: tokens verify with JWT_SECRET as it is, and
    a token signed with it is taken by every service."""
    token = api.register()["token"]
    claims = jwt.decode(token, stack.env["JWT_SECRET"], algorithms=["HS256"])
    signed_here = jwt.encode(claims, stack.env["JWT_SECRET"], algorithm="HS256")
    for route in ROUTES:
        assert api.call("GET", route, token=signed_here).status == 200, route
    assert "JWT_PUBLIC_KEYS" not in stack.env and "JWT_PRIVATE_KEY" not in stack.env_of("auth")


def _forgeries(stack: Stack, token: str) -> dict[str, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    auth_kid = {"kid": key_id(_auth_key(stack).public_key())}
    catalog_key = stack.service_key("catalog")
    public_key = public_key_text(_auth_key(stack).public_key())
    return {
        "another key naming auth's key id": jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=auth_kid
        ),
        "catalog's service key naming auth's key id": jwt.encode(
            claims, catalog_key, algorithm="EdDSA", headers=auth_kid
        ),
        "catalog's service key": jwt.encode(
            claims,
            catalog_key,
            algorithm="EdDSA",
            headers={"kid": key_id(catalog_key.public_key())},
        ),
        "HS256 keyed with auth's public key": jwt.encode(
            claims, public_key, algorithm="HS256", headers=auth_kid
        ),
        "expired": jwt.encode(
            {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 60},
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers=auth_kid,
        ),
    }


def test_a_token_signed_with_any_other_key_gets_401_from_every_service(
    eddsa_stack: Stack, eddsa_api: Api
) -> None:
    token = eddsa_api.register()["token"]
    for what, forged in _forgeries(eddsa_stack, token).items():
        for route in ROUTES:
            answer = eddsa_api.call("GET", route, token=forged)
            assert answer.status == 401, (what, route, answer.body)
            assert_error(answer, 401)
    assert eddsa_api.call("GET", "/api/auth/me", token=token).status == 200


# Every value of a running process's environment is tried as an HMAC key, short ones too.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_no_setting_of_catalog_or_sync_signs_a_user_token(eddsa_stack: Stack) -> None:
    auth_public_keys = public_keys_from_text(eddsa_stack.env["JWT_PUBLIC_KEYS"], "auth")
    auth_kid = key_id(_auth_key(eddsa_stack).public_key())
    for child in eddsa_stack.children:
        if child.name not in ("catalog", "sync"):
            continue
        environment = psutil.Process(child.process.pid).environ()
        assert "SERVICE_PRIVATE_KEY" in environment, "the process's own key is looked at too"
        forging = [
            variable
            for variable, value in environment.items()
            if any(_accepted(auth_public_keys, token) for token in _signed_with(value, auth_kid))
        ]
        assert not forging, f"{child.name}'s {forging} can sign user tokens"


def _signed_with(value: str, auth_kid: str) -> list[str]:
    """User tokens signed with a setting's value: as an HMAC key, and if it is an Ed25519 key,
    naming auth's key id and its own."""
    now = int(time.time())
    claims = {"sub": "1", "org": "1", "role": "owner", "sid": "1", "iat": now, "exp": now + 60}
    tokens = [jwt.encode(claims, value, algorithm="HS256")] if value else []
    try:
        key = private_key_from_text(value)
    except ValueError:
        return tokens
    for kid in (auth_kid, key_id(key.public_key())):
        tokens.append(jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid}))
    return tokens


def _accepted(keys: PublicKeys, token: str) -> bool:
    try:
        verify_user_token(keys, token)
    except Unauthenticated:
        return False
    return True
