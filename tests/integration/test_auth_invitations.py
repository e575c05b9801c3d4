"""Invitations through Envoy: inviting reveals nothing about who has an account, membership
starts only on the invited user's accept, and expired, revoked or someone else's invitations
cannot be used."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dev.stack import Stack
from tests.integration.auth_support import (
    RFC3339,
    assert_error,
    invite_and_accept,
    new_team,
    person_of,
)
from tests.integration.conftest import Answer, Api

_unique = itertools.count(1)


def _unregistered_email() -> str:
    return f"nobody-yet-{next(_unique)}-{datetime.now(UTC).timestamp()}@example.com"


def _invite(api: Api, token: str, email: str, role: str = "member") -> Answer:
    return api.call(
        "POST", "/api/organization/members", {"email": email, "role": role}, token=token
    )


def _mine(api: Api, token: str) -> list[dict[str, Any]]:
    answer = api.call("GET", "/api/invitations", token=token)
    assert answer.status == 200, answer.body
    return list(answer.body["invitations"])


def _pending(api: Api, token: str) -> list[dict[str, Any]]:
    answer = api.call("GET", "/api/organization/invitations", token=token)
    assert answer.status == 200, answer.body
    return list(answer.body["invitations"])


def _accept(api: Api, token: str, invitation_id: str) -> Answer:
    return api.call("POST", f"/api/invitations/{invitation_id}:accept", {}, token=token)


def _decline(api: Api, token: str, invitation_id: str) -> Answer:
    return api.call("POST", f"/api/invitations/{invitation_id}:decline", {}, token=token)


def _members(api: Api, token: str) -> dict[str, str]:
    answer = api.call("GET", "/api/organization/members", token=token)
    assert answer.status == 200, answer.body
    return {m["email"]: m["role"] for m in answer.body["members"]}


def _expire(stack: Stack, invitation_id: str) -> None:
    with psycopg.connect(stack.env["CRED_DATABASE_URL"]) as conn:
        conn.execute(
            "UPDATE invitations SET created_at = now() - interval '8 days',"
            " expires_at = now() - interval '1 second' WHERE id = %s",
            (int(invitation_id),),
        )


def test_inviting_answers_the_same_for_registered_and_unregistered_emails(api: Api) -> None:
    owner = api.register()
    registered = person_of(api.register())
    answers = {
        "registered": _invite(api, owner["token"], registered.email.upper()),
        "unregistered": _invite(api, owner["token"], _unregistered_email().upper()),
    }
    shapes = {}
    for label, answer in answers.items():
        assert answer.status == 200, (label, answer.body)
        assert answer.headers["content-type"] == "application/json", answer.headers
        invitation = answer.body["invitation"]
        assert set(answer.body) == {"invitation"}
        assert set(invitation) == {"id", "email", "role", "expires_at"}
        assert isinstance(invitation["id"], str) and invitation["id"].isdigit()
        assert invitation["email"] == invitation["email"].lower()
        assert invitation["role"] == "member"
        assert RFC3339.fullmatch(invitation["expires_at"])
        expires = datetime.fromisoformat(invitation["expires_at"].replace("Z", "+00:00"))
        assert abs(expires - datetime.now(UTC) - timedelta(days=7)) < timedelta(minutes=1)
        shapes[label] = {k: type(v) for k, v in invitation.items()}
    assert shapes["registered"] == shapes["unregistered"]
    assert answers["registered"].body["invitation"]["email"] == registered.email
    # Nobody has joined yet.
    assert set(_members(api, owner["token"])) == {owner["user"]["email"]}


def test_the_invited_user_sees_accepts_and_becomes_a_member(api: Api) -> None:
    owner = api.register()
    invitee = person_of(api.register())
    invitation = _invite(api, owner["token"], invitee.email, "admin").body["invitation"]
    assert _mine(api, invitee.token) == [
        {
            "id": invitation["id"],
            "organization": owner["organization"],
            "role": "admin",
            "expires_at": invitation["expires_at"],
        }
    ]
    assert invitee.email not in _members(api, owner["token"])
    accepted = _accept(api, invitee.token, invitation["id"])
    assert accepted.status == 200, accepted.body
    assert accepted.body == {
        "member": {
            "user_id": invitee.user_id,
            "email": invitee.email,
            "name": accepted.body["member"]["name"],
            "role": "admin",
        }
    }
    assert _members(api, owner["token"])[invitee.email] == "admin"
    assert _mine(api, invitee.token) == []
    assert _pending(api, owner["token"]) == []
    # The membership is real: the user can act on the organization in the role.
    switched = api.call(
        "POST", "/api/auth/switch-organization",
        {"organization_id": owner["organization"]["id"]}, token=invitee.token,
    )  # fmt: skip
    assert switched.status == 200, switched.body
    assert api.call("GET", "/api/credentials", token=switched.body["token"]).status == 200
    assert_error(_accept(api, invitee.token, invitation["id"]), 404, "invitation_id")


def test_an_invitation_for_an_email_registered_later_can_be_accepted(api: Api) -> None:
    owner = api.register()
    email = _unregistered_email()
    invitation = _invite(api, owner["token"], email, "viewer").body["invitation"]
    later = person_of(api.register(email=email.upper()))
    assert [i["id"] for i in _mine(api, later.token)] == [invitation["id"]]
    accepted = _accept(api, later.token, invitation["id"])
    assert accepted.status == 200, accepted.body
    assert _members(api, owner["token"])[email] == "viewer"


def test_someone_elses_invitation_is_not_found_and_not_listed(api: Api) -> None:
    team = new_team(api, roles=("admin",))
    invitee = person_of(api.register())
    stranger = person_of(api.register())
    invitation = _invite(api, team.owner.token, invitee.email).body["invitation"]
    assert _mine(api, stranger.token) == []
    for caller in (stranger, team.owner, team.person("admin")):
        assert_error(_accept(api, caller.token, invitation["id"]), 404, "invitation_id")
        assert_error(_decline(api, caller.token, invitation["id"]), 404, "invitation_id")
    # An id that never existed answers exactly as someone else's does.
    unknown = _accept(api, stranger.token, "999999999")
    theirs = _accept(api, stranger.token, invitation["id"])
    assert (unknown.status, unknown.body["code"]) == (theirs.status, theirs.body["code"])
    assert unknown.body["message"].replace("999999999", invitation["id"]) == theirs.body["message"]
    assert [i["id"] for i in _mine(api, invitee.token)] == [invitation["id"]]
    assert _accept(api, invitee.token, invitation["id"]).status == 200


def test_an_expired_invitation_cannot_be_accepted_and_inviting_again_renews_it(
    api: Api, stack: Stack
) -> None:
    owner = api.register()
    invitee = person_of(api.register())
    invitation = _invite(api, owner["token"], invitee.email).body["invitation"]
    _expire(stack, invitation["id"])
    assert _mine(api, invitee.token) == []
    assert _pending(api, owner["token"]) == []
    assert_error(_accept(api, invitee.token, invitation["id"]), 404, "invitation_id")
    assert_error(_decline(api, invitee.token, invitation["id"]), 404, "invitation_id")
    assert invitee.email not in _members(api, owner["token"])
    renewed = _invite(api, owner["token"], invitee.email).body["invitation"]
    assert _accept(api, invitee.token, renewed["id"]).status == 200


def test_admins_list_and_revoke_pending_invitations(api: Api) -> None:
    team = new_team(api, roles=("admin",))
    admin = team.person("admin")
    invitee = person_of(api.register())
    email = _unregistered_email()
    first = _invite(api, admin.token, invitee.email, "viewer").body["invitation"]
    second = _invite(api, team.owner.token, email, "member").body["invitation"]
    assert _pending(api, admin.token) == [first, second]
    revoked = api.call("DELETE", f"/api/organization/invitations/{first['id']}", token=admin.token)
    assert revoked.status == 200, revoked.body
    assert revoked.body == {}
    assert _pending(api, team.owner.token) == [second]
    assert _mine(api, invitee.token) == []
    assert_error(_accept(api, invitee.token, first["id"]), 404, "invitation_id")
    assert_error(
        api.call("DELETE", f"/api/organization/invitations/{first['id']}", token=admin.token),
        404,
        "invitation_id",
    )
    assert invitee.email not in _members(api, team.owner.token)


def test_another_organization_cannot_revoke_or_list_the_invitations(api: Api) -> None:
    owner = api.register()
    outsider = api.register()
    invitation = _invite(api, owner["token"], _unregistered_email()).body["invitation"]
    assert _pending(api, outsider["token"]) == []
    assert_error(
        api.call(
            "DELETE", f"/api/organization/invitations/{invitation['id']}",
            token=outsider["token"],
        ),
        404,
        "invitation_id",
    )  # fmt: skip
    assert _pending(api, owner["token"]) == [invitation]


def test_declining_answers_empty_and_the_invitation_is_gone(api: Api) -> None:
    owner = api.register()
    invitee = person_of(api.register())
    invitation = _invite(api, owner["token"], invitee.email).body["invitation"]
    declined = _decline(api, invitee.token, invitation["id"])
    assert declined.status == 200, declined.body
    assert declined.body == {}
    assert _mine(api, invitee.token) == []
    assert _pending(api, owner["token"]) == []
    assert_error(_accept(api, invitee.token, invitation["id"]), 404, "invitation_id")
    assert invitee.email not in _members(api, owner["token"])


@pytest.mark.parametrize("role", ["viewer", "member", "admin", "owner"])
def test_invitation_routes_by_role(api: Api, role: str) -> None:
    """Admins and owners invite, list and revoke; only owners deal in owner invitations."""
    team = new_team(api)
    caller = team.person(role).token
    manages = role in ("admin", "owner")
    for invite_role in ("viewer", "owner"):
        answer = _invite(api, caller, _unregistered_email(), invite_role)
        if manages and (invite_role != "owner" or role == "owner"):
            assert answer.status == 200, answer.body
        else:
            assert_error(answer, 403, "owner" if manages else "admin")
    listed = api.call("GET", "/api/organization/invitations", token=caller)
    to_owner = _invite(api, team.owner.token, _unregistered_email(), "owner").body["invitation"]
    revoked = api.call("DELETE", f"/api/organization/invitations/{to_owner['id']}", token=caller)
    if manages:
        assert listed.status == 200, listed.body
    else:
        assert_error(listed, 403, "admin")
    if role == "owner":
        assert revoked.status == 200, revoked.body
    else:
        assert_error(revoked, 403, "owner" if manages else "admin")


def test_inviting_a_member_is_a_conflict_and_invalid_fields_are_400(api: Api) -> None:
    team = new_team(api, roles=("member",))
    assert_error(_invite(api, team.owner.token, team.person("member").email.upper()), 409, "email")
    assert_error(_invite(api, team.owner.token, "not-an-email"), 400, "email")
    assert_error(_invite(api, team.owner.token, _unregistered_email(), "boss"), 400, "role")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/invitations/abc:accept"),
        ("POST", "/api/invitations/-1:decline"),
        ("POST", "/api/invitations/99999999999999999999:accept"),
        ("DELETE", "/api/organization/invitations/abc"),
    ],
)
def test_malformed_invitation_ids_are_4xx_json(api: Api, method: str, path: str) -> None:
    token = api.register()["token"]
    answer = api.call(method, path, {} if method == "POST" else None, token=token)
    assert 400 <= answer.status < 500, answer.body
    assert answer.body["code"] != 0 and answer.body["message"], answer.body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/organization/members"),
        ("GET", "/api/organization/invitations"),
        ("DELETE", "/api/organization/invitations/1"),
        ("GET", "/api/invitations"),
        ("POST", "/api/invitations/1:accept"),
        ("POST", "/api/invitations/1:decline"),
    ],
)
def test_invitation_routes_need_a_token(api: Api, method: str, path: str) -> None:
    assert_error(api.call(method, path, {} if method == "POST" else None), 401)


def test_an_accepted_member_can_be_removed_and_invited_again(api: Api) -> None:
    owner = api.register()
    invitee = person_of(api.register())
    assert invite_and_accept(api, owner["token"], invitee, "member").status == 200
    removed = api.call(
        "DELETE", f"/api/organization/members/{invitee.user_id}", token=owner["token"]
    )
    assert removed.status == 200, removed.body
    assert invite_and_accept(api, owner["token"], invitee, "viewer").status == 200
    assert _members(api, owner["token"])[invitee.email] == "viewer"
