"""Accounts through Envoy: register, login (and its lockout), logout, me, switch organization,
sessions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from dev.stack import Stack
from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.integration.auth_support import RFC3339, assert_error, login, person_of
from tests.integration.conftest import Api

ADDRESS_LOCKED = "too many failed logins for this email from your address; try again in 15 minutes"
EMAIL_LOCKED = "too many failed logins for this email; try again in 15 minutes"
# The README's cap on an email's failed logins from all addresses together.
EMAIL_FAILURE_LIMIT = 100


def _current_session_id(api: Api, token: str) -> str:
    sessions = api.call("GET", "/api/auth/sessions", token=token).body["sessions"]
    return str(next(s["id"] for s in sessions if s["current"]))


def test_register_answers_a_token_for_the_new_organization_the_user_owns(api: Api) -> None:
    answer = api.call(
        "POST", "/api/auth/register",
        {"email": "Ada.Reg@Example.com", "password": "long enough", "name": "Ada",
         "organization_name": "Ada's Shop"},
    )  # fmt: skip
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"token", "expires_at", "user", "organization"}
    assert RFC3339.fullmatch(answer.body["expires_at"])
    user, organization = answer.body["user"], answer.body["organization"]
    assert user["email"] == "ada.reg@example.com" and user["name"] == "Ada"
    assert organization["name"] == "Ada's Shop"
    assert isinstance(user["id"], str) and isinstance(organization["id"], str)
    me = api.call("GET", "/api/auth/me", token=answer.body["token"])
    assert me.status == 200, me.body
    assert me.body["organization_id"] == organization["id"]
    assert me.body["role"] == "owner"


def test_register_refuses_an_email_already_taken_in_any_case(api: Api) -> None:
    taken = api.register()["user"]["email"]
    for email in (taken, taken.upper()):
        answer = api.call(
            "POST", "/api/auth/register",
            {"email": email, "password": "long enough", "name": "Twin", "organization_name": "X"},
        )  # fmt: skip
        assert_error(answer, 409, "email")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "two@@example.com"),
        ("email", "spaces in@example.com"),
        ("email", "nodomain@localhost"),
        ("email", ""),
        ("password", "seven77"),
        ("password", ""),
        ("name", "   "),
        ("organization_name", ""),
    ],
)
def test_register_refuses_invalid_fields_naming_them(api: Api, field: str, value: str) -> None:
    body = {
        "email": "valid-but-unused@example.com",
        "password": "long enough",
        "name": "Val",
        "organization_name": "Val Co",
        field: value,
    }
    assert_error(api.call("POST", "/api/auth/register", body), 400, field)


def test_login_answers_a_token_and_the_users_organizations(api: Api) -> None:
    registered = api.register()
    answer = login(api, registered["user"]["email"].upper(), registered["password"])
    assert answer.status == 200, answer.body
    assert answer.body["user"] == registered["user"]
    assert answer.body["organization_id"] == registered["organization"]["id"]
    assert answer.body["organizations"] == [{**registered["organization"], "role": "owner"}]
    assert RFC3339.fullmatch(answer.body["expires_at"])
    assert api.call("GET", "/api/auth/me", token=answer.body["token"]).status == 200


def test_login_with_organization_id_acts_on_that_organization(api: Api) -> None:
    registered = api.register()
    second = api.call(
        "POST", "/api/organizations", {"name": "Second"}, token=registered["token"]
    ).body["organization"]
    answer = login(
        api, registered["user"]["email"], registered["password"], organization_id=second["id"]
    )
    assert answer.status == 200, answer.body
    assert answer.body["organization_id"] == second["id"]
    assert {o["id"] for o in answer.body["organizations"]} == {
        registered["organization"]["id"],
        second["id"],
    }
    me = api.call("GET", "/api/auth/me", token=answer.body["token"]).body
    assert me["organization_id"] == second["id"]


def test_login_to_an_organization_of_someone_else_is_forbidden(api: Api) -> None:
    registered = api.register()
    stranger_org = api.register()["organization"]["id"]
    answer = login(
        api, registered["user"]["email"], registered["password"], organization_id=stranger_org
    )
    assert_error(answer, 403, "organization_id")


def test_wrong_email_and_wrong_password_answer_the_same_401(api: Api) -> None:
    registered = api.register()
    wrong_password = login(api, registered["user"]["email"], "not the password")
    wrong_email = login(api, "nobody-here@example.com", registered["password"])
    assert_error(wrong_password, 401)
    assert wrong_email.status == wrong_password.status
    assert wrong_email.body == wrong_password.body


def test_logout_revokes_only_the_token_used(api: Api) -> None:
    registered = api.register()
    other = login(api, registered["user"]["email"], registered["password"]).body["token"]
    answer = api.call("POST", "/api/auth/logout", {}, token=registered["token"])
    assert answer.status == 200, answer.body
    assert answer.body == {}
    assert_error(api.call("GET", "/api/auth/me", token=registered["token"]), 401)
    assert_error(api.call("POST", "/api/auth/logout", {}, token=registered["token"]), 401)
    assert api.call("GET", "/api/auth/me", token=other).status == 200


def test_me_answers_user_role_and_every_organization(api: Api) -> None:
    registered = api.register()
    second = api.call(
        "POST", "/api/organizations", {"name": "Side Shop"}, token=registered["token"]
    ).body["organization"]
    me = api.call("GET", "/api/auth/me", token=registered["token"])
    assert me.status == 200, me.body
    assert me.body == {
        "user": registered["user"],
        "organization_id": registered["organization"]["id"],
        "role": "owner",
        "organizations": [
            {**registered["organization"], "role": "owner"},
            {**second, "role": "owner"},
        ],
    }


def test_switch_organization_issues_a_token_for_that_organization(api: Api) -> None:
    registered = api.register()
    second = api.call(
        "POST", "/api/organizations", {"name": "Switched"}, token=registered["token"]
    ).body["organization"]
    answer = api.call(
        "POST", "/api/auth/switch-organization", {"organization_id": second["id"]},
        token=registered["token"],
    )  # fmt: skip
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"token", "expires_at"}
    assert RFC3339.fullmatch(answer.body["expires_at"])
    assert (
        api.call("GET", "/api/auth/me", token=answer.body["token"]).body["organization_id"]
        == second["id"]
    )
    # The token switched from still acts on its own organization.
    assert (
        api.call("GET", "/api/auth/me", token=registered["token"]).body["organization_id"]
        == registered["organization"]["id"]
    )


def test_switch_to_an_organization_one_is_not_a_member_of_is_forbidden(api: Api) -> None:
    registered = api.register()
    stranger_org = api.register()["organization"]["id"]
    answer = api.call(
        "POST", "/api/auth/switch-organization", {"organization_id": stranger_org},
        token=registered["token"],
    )  # fmt: skip
    assert_error(answer, 403, "organization_id")


def test_sessions_lists_the_callers_live_sessions_marking_the_current_one(api: Api) -> None:
    registered = api.register()
    second = login(api, registered["user"]["email"], registered["password"]).body["token"]
    third = login(api, registered["user"]["email"], registered["password"]).body["token"]
    api.call("POST", "/api/auth/logout", {}, token=third)
    api.register()  # someone else's session must not show
    answer = api.call("GET", "/api/auth/sessions", token=second)
    assert answer.status == 200, answer.body
    sessions = answer.body["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    for session in sessions:
        assert set(session) == {"id", "created_at", "expires_at", "current"}
        assert RFC3339.fullmatch(session["created_at"]) and RFC3339.fullmatch(session["expires_at"])
    first_view = api.call("GET", "/api/auth/sessions", token=registered["token"]).body["sessions"]
    assert {s["id"] for s in first_view} == {s["id"] for s in sessions}
    assert _current_session_id(api, registered["token"]) != _current_session_id(api, second)


def test_deleting_one_of_ones_sessions_revokes_its_token(api: Api) -> None:
    registered = api.register()
    other_token = login(api, registered["user"]["email"], registered["password"]).body["token"]
    other_session = _current_session_id(api, other_token)
    answer = api.call("DELETE", f"/api/auth/sessions/{other_session}", token=registered["token"])
    assert answer.status == 200, answer.body
    assert answer.body == {}
    assert_error(api.call("GET", "/api/auth/me", token=other_token), 401)
    remaining = api.call("GET", "/api/auth/sessions", token=registered["token"]).body["sessions"]
    assert other_session not in {s["id"] for s in remaining}
    assert api.call("GET", "/api/auth/me", token=registered["token"]).status == 200


def test_deleting_another_users_session_is_not_found_and_changes_nothing(api: Api) -> None:
    attacker = api.register()
    victim = api.register()
    victim_session = _current_session_id(api, victim["token"])
    answer = api.call("DELETE", f"/api/auth/sessions/{victim_session}", token=attacker["token"])
    assert_error(answer, 404, "session_id")
    assert api.call("GET", "/api/auth/me", token=victim["token"]).status == 200


def test_five_failed_logins_lock_the_email_but_no_other(api: Api) -> None:
    locked = person_of(api.register())
    bystander = person_of(api.register())
    for _ in range(5):
        assert_error(login(api, locked.email, "not the password"), 401)
    sixth = login(api, locked.email, locked.password)
    assert_error(sixth, 429, "too many failed logins")
    assert_error(login(api, locked.email.upper(), locked.password), 429)
    assert login(api, bystander.email, bystander.password).status == 200
    # Tokens issued before the lockout keep working: the lock is on logging in.
    assert api.call("GET", "/api/auth/me", token=locked.token).status == 200


def test_ten_parallel_correct_logins_all_succeed(api: Api) -> None:
    person = person_of(api.register())
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: login(api, person.email, person.password), range(10)))
    assert [a.status for a in answers] == [200] * 10, [a.body for a in answers]
    assert len({a.body["token"] for a in answers}) == 10


def test_failed_logins_still_lock_after_parallel_correct_ones(api: Api) -> None:
    person = person_of(api.register())
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: login(api, person.email, person.password), range(10)))
    assert [a.status for a in answers] == [200] * 10
    for _ in range(5):
        assert_error(login(api, person.email, "not the password"), 401)
    assert_error(login(api, person.email, person.password), 429, "too many failed logins")


def test_a_parallel_burst_of_wrong_passwords_gets_five_checked(api: Api) -> None:
    person = person_of(api.register())
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: login(api, person.email, f"wrong {n}"), range(20)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [401] * 5 + [429] * 15, [a.body for a in answers]
    assert_error(login(api, person.email, person.password), 429, "too many failed logins")


def _client_from(api: Api, source: str) -> httpx.Client:
    """A REST client of the gateway whose connections come from `source`, a loopback address
    (Linux routes 127.0.0.0/8 to itself), so Envoy sees another client."""
    return httpx.Client(
        base_url=api.client.base_url,
        transport=httpx.HTTPTransport(local_address=source),
        timeout=30,
    )


def _login_from(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def _assert_locked(response: httpx.Response, message: str) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert (body["code"], body["message"]) == (8, message), body


def test_an_address_locked_out_of_an_email_leaves_the_owner_at_another_address_unaffected(
    api: Api,
) -> None:
    person = person_of(api.register())
    ghost = f"ghost-{person.email}"
    with _client_from(api, "127.0.0.2") as attacker, _client_from(api, "127.0.0.3") as owner:
        for email in (person.email, ghost):
            for _ in range(5):
                assert _login_from(attacker, email, "not the password").status_code == 401
            # The same answer whether or not the email has an account.
            _assert_locked(_login_from(attacker, email, person.password), ADDRESS_LOCKED)
        answer = _login_from(owner, person.email, person.password)
        assert answer.status_code == 200, answer.text
        # The owner's login does not unlock the attacker's address.
        _assert_locked(_login_from(attacker, person.email, person.password), ADDRESS_LOCKED)
        assert _login_from(owner, ghost, "not the password").status_code == 401


def _direct_login(
    stub: auth_pb2_grpc.AuthServiceStub, email: str, password: str, address: str | None
) -> grpc.StatusCode:
    metadata = (("x-envoy-external-address", address),) if address else ()
    try:
        stub.Login(
            auth_pb2.LoginRequest(email=email, password=password), metadata=metadata, timeout=10
        )
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_direct_calls_are_locked_out_by_the_address_envoy_sets(api: Api, stack: Stack) -> None:
    person = person_of(api.register())
    with grpc.insecure_channel(stack.env["AUTH_ADDRESS"]) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        wrong = [
            _direct_login(stub, person.email, "not the password", "203.0.113.40") for _ in range(5)
        ]
        assert wrong == [grpc.StatusCode.UNAUTHENTICATED] * 5
        locked = _direct_login(stub, person.email, person.password, "203.0.113.40")
        assert locked == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _direct_login(stub, person.email, person.password, "203.0.113.41") == (
            grpc.StatusCode.OK
        )
        # Without the header a call counts against its peer's address (127.0.0.1 here).
        assert _direct_login(stub, person.email, person.password, None) == grpc.StatusCode.OK


def test_failures_from_many_addresses_lock_the_email_for_every_address(
    api: Api, stack: Stack
) -> None:
    person = person_of(api.register())
    with grpc.insecure_channel(stack.env["AUTH_ADDRESS"]) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        # Four failures from each address, under any one address's limit of five.
        for n in range(EMAIL_FAILURE_LIMIT):
            address = f"198.51.100.{n // 4}"
            code = _direct_login(stub, person.email, "not the password", address)
            assert code == grpc.StatusCode.UNAUTHENTICATED, n
    # Everyone is locked out now, the owner too: the accepted price of bounding guessing.
    with _client_from(api, "127.0.0.4") as owner:
        _assert_locked(_login_from(owner, person.email, person.password), EMAIL_LOCKED)
    assert_error(login(api, person.email, person.password), 429, EMAIL_LOCKED)
