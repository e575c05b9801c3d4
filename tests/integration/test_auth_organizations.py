"""Organizations and members through Envoy: the routes, the role matrix, the owner rules, role
changes on tokens already issued, and isolation between organizations."""

from __future__ import annotations

import dataclasses

import pytest

from tests.integration.auth_support import (
    Team,
    assert_error,
    invite_and_accept,
    join,
    login,
    new_team,
    person_of,
)
from tests.integration.conftest import Api

ROLES = ("viewer", "member", "admin", "owner")
MANAGERS = ("admin", "owner")


def _members(api: Api, token: str) -> dict[str, str]:
    answer = api.call("GET", "/api/organization/members", token=token)
    assert answer.status == 200, answer.body
    return {m["email"]: m["role"] for m in answer.body["members"]}


def test_creating_an_organization_makes_the_caller_its_owner(api: Api) -> None:
    registered = api.register()
    answer = api.call(
        "POST", "/api/organizations", {"name": "  Outlet  "}, token=registered["token"]
    )
    assert answer.status == 200, answer.body
    organization = answer.body["organization"]
    assert organization["name"] == "Outlet" and isinstance(organization["id"], str)
    me = api.call("GET", "/api/auth/me", token=registered["token"]).body
    assert {**organization, "role": "owner"} in me["organizations"]
    assert me["organization_id"] == registered["organization"]["id"]  # the token's stays


def test_creating_an_organization_without_a_name_is_refused(api: Api) -> None:
    token = api.register()["token"]
    assert_error(api.call("POST", "/api/organizations", {"name": " "}, token=token), 400, "name")
    assert_error(api.call("POST", "/api/organizations", {}, token=token), 400, "name")


def test_members_list_shows_every_member_with_email_name_and_role(api: Api) -> None:
    team = new_team(api)
    answer = api.call("GET", "/api/organization/members", token=team.person("viewer").token)
    assert answer.status == 200, answer.body
    members = answer.body["members"]
    assert {m["user_id"] for m in members} == {team.person(r).user_id for r in ROLES}
    for member in members:
        assert set(member) == {"user_id", "email", "name", "role"}
        assert team.person(member["role"]).email == member["email"]


def test_adding_someone_already_a_member_is_a_conflict(api: Api) -> None:
    team = new_team(api, roles=("member",))
    member_email = team.person("member").email
    answer = api.call(
        "POST", "/api/organization/members", {"email": member_email, "role": "admin"},
        token=team.owner.token,
    )  # fmt: skip
    assert_error(answer, 409, "email")
    assert _members(api, team.owner.token)[team.person("member").email] == "member"


@pytest.mark.parametrize("role", ["", "superuser", "Owner"])
def test_an_unknown_role_is_refused_naming_the_field(api: Api, role: str) -> None:
    team = new_team(api, roles=("member",))
    newcomer = person_of(api.register())
    added = api.call(
        "POST", "/api/organization/members", {"email": newcomer.email, "role": role},
        token=team.owner.token,
    )  # fmt: skip
    assert_error(added, 400, "role")
    patched = api.call(
        "PATCH", f"/api/organization/members/{team.person('member').user_id}", {"role": role},
        token=team.owner.token,
    )  # fmt: skip
    assert_error(patched, 400, "role")


def test_changing_a_role_answers_the_member_with_the_new_role(api: Api) -> None:
    team = new_team(api, roles=("member",))
    target = team.person("member")
    answer = api.call(
        "PATCH", f"/api/organization/members/{target.user_id}", {"role": "admin"},
        token=team.owner.token,
    )  # fmt: skip
    assert answer.status == 200, answer.body
    assert answer.body["member"] == {
        "user_id": target.user_id,
        "email": target.email,
        "name": answer.body["member"]["name"],
        "role": "admin",
    }
    assert _members(api, team.owner.token)[target.email] == "admin"


def test_removing_a_member_takes_them_off_the_list(api: Api) -> None:
    team = new_team(api, roles=("member",))
    target = team.person("member")
    answer = api.call(
        "DELETE", f"/api/organization/members/{target.user_id}", token=team.owner.token
    )
    assert answer.status == 200, answer.body
    assert answer.body == {}
    assert target.email not in _members(api, team.owner.token)
    assert_error(
        api.call("DELETE", f"/api/organization/members/{target.user_id}", token=team.owner.token),
        404,
        "user_id",
    )


@pytest.mark.parametrize("role", ROLES)
def test_member_routes_by_role(api: Api, role: str) -> None:
    """Everyone reads the member list; admins and owners invite, change and remove members."""
    team = new_team(api)
    caller = team.person(role)
    assert api.call("GET", "/api/organization/members", token=caller.token).status == 200
    newcomer = person_of(api.register())
    invited = api.call(
        "POST", "/api/organization/members", {"email": newcomer.email, "role": "viewer"},
        token=caller.token,
    )  # fmt: skip
    if role in MANAGERS:
        assert invited.status == 200, invited.body
        accepted = api.call(
            "POST", f"/api/invitations/{invited.body['invitation']['id']}:accept", {},
            token=newcomer.token,
        )  # fmt: skip
    else:
        assert_error(invited, 403, "admin")
        accepted = invite_and_accept(api, team.owner.token, newcomer, "viewer")
    assert accepted.status == 200, accepted.body
    attempts = [
        ("PATCH", f"/api/organization/members/{newcomer.user_id}", {"role": "member"}),
        ("DELETE", f"/api/organization/members/{newcomer.user_id}", None),
    ]
    for method, path, body in attempts:
        answer = api.call(method, path, body, token=caller.token)
        if role in MANAGERS:
            assert answer.status == 200, (method, answer.body)
        else:
            assert_error(answer, 403, "admin")
    expected = team.emails() | (set() if role in MANAGERS else {newcomer.email})
    assert set(_members(api, team.owner.token)) == expected


def test_only_owners_grant_or_take_away_the_owner_role(api: Api) -> None:
    team = new_team(api, roles=("admin", "member"))
    admin, member = team.person("admin"), team.person("member")
    newcomer = person_of(api.register())
    refused = [
        ("POST", "/api/organization/members", {"email": newcomer.email, "role": "owner"}),
        ("PATCH", f"/api/organization/members/{member.user_id}", {"role": "owner"}),
        ("PATCH", f"/api/organization/members/{admin.user_id}", {"role": "owner"}),
        ("PATCH", f"/api/organization/members/{team.owner.user_id}", {"role": "admin"}),
        ("DELETE", f"/api/organization/members/{team.owner.user_id}", None),
    ]
    for method, path, body in refused:
        assert_error(api.call(method, path, body, token=admin.token), 403, "owner")
    assert _members(api, team.owner.token)[team.owner.email] == "owner"
    granted = api.call(
        "PATCH", f"/api/organization/members/{member.user_id}", {"role": "owner"},
        token=team.owner.token,
    )  # fmt: skip
    assert granted.status == 200, granted.body
    # The new owner may take the role away from the first one.
    demoted = api.call(
        "PATCH", f"/api/organization/members/{team.owner.user_id}", {"role": "admin"},
        token=member.token,
    )  # fmt: skip
    assert demoted.status == 200, demoted.body
    assert _members(api, member.token)[team.owner.email] == "admin"


def test_the_last_owner_can_be_neither_demoted_nor_removed(api: Api) -> None:
    team = new_team(api, roles=("admin",))
    owner = team.owner
    demote_self = ("PATCH", f"/api/organization/members/{owner.user_id}", {"role": "admin"})
    remove_self = ("DELETE", f"/api/organization/members/{owner.user_id}", None)
    for method, path, body in (demote_self, remove_self):
        assert_error(api.call(method, path, body, token=owner.token), 400, "last owner")
    assert _members(api, owner.token)[owner.email] == "owner"
    # With a second owner, the first may step down; then the second is the last one.
    second = team.person("admin")
    api.call(
        "PATCH", f"/api/organization/members/{second.user_id}", {"role": "owner"}, token=owner.token
    )
    assert api.call(*remove_self, token=owner.token).status == 200
    assert_error(
        api.call("DELETE", f"/api/organization/members/{second.user_id}", token=second.token),
        400,
        "last owner",
    )


def test_a_demotion_applies_to_tokens_already_issued(api: Api) -> None:
    team = new_team(api, roles=("admin",))
    admin = team.person("admin")
    newcomer = person_of(api.register())
    api.call(
        "PATCH", f"/api/organization/members/{admin.user_id}", {"role": "viewer"},
        token=team.owner.token,
    )  # fmt: skip
    assert api.call("GET", "/api/auth/me", token=admin.token).body["role"] == "viewer"
    answer = api.call(
        "POST", "/api/organization/members", {"email": newcomer.email, "role": "viewer"},
        token=admin.token,
    )  # fmt: skip
    assert_error(answer, 403, "admin")
    assert_error(api.call("GET", "/api/credentials", token=admin.token), 403, "admin")


def test_a_promotion_applies_to_tokens_already_issued(api: Api) -> None:
    team = new_team(api, roles=("member",))
    member = team.person("member")
    api.call(
        "PATCH", f"/api/organization/members/{member.user_id}", {"role": "admin"},
        token=team.owner.token,
    )  # fmt: skip
    newcomer = person_of(api.register())
    answer = api.call(
        "POST", "/api/organization/members", {"email": newcomer.email, "role": "viewer"},
        token=member.token,
    )  # fmt: skip
    assert answer.status == 200, answer.body


def test_a_removed_members_tokens_stop_working_at_once(api: Api) -> None:
    team = new_team(api, roles=("admin",))
    admin = team.person("admin")
    api.call("DELETE", f"/api/organization/members/{admin.user_id}", token=team.owner.token)
    for method, path in (
        ("GET", "/api/auth/me"),
        ("GET", "/api/organization/members"),
        ("GET", "/api/credentials"),
    ):
        assert_error(api.call(method, path, token=admin.token), 401)
    # The person still has their own organization to log in to.
    assert (
        api.call(
            "POST", "/api/auth/login", {"email": admin.email, "password": admin.password}
        ).status
        == 200
    )


def test_adding_a_removed_member_back_does_not_revive_their_old_tokens(api: Api) -> None:
    team = new_team(api, roles=("member",))
    member = team.person("member")
    api.call("DELETE", f"/api/organization/members/{member.user_id}", token=team.owner.token)
    fresh = login(api, member.email, member.password).body["token"]  # their own organization
    accepted = invite_and_accept(
        api, team.owner.token, dataclasses.replace(member, token=fresh), "viewer"
    )
    assert accepted.status == 200, accepted.body
    assert_error(api.call("GET", "/api/auth/me", token=member.token), 401)
    back = login(api, member.email, member.password, organization_id=team.organization_id)
    assert back.status == 200, back.body
    assert api.call("GET", "/api/auth/me", token=back.body["token"]).body["role"] == "viewer"


def _assert_sees_nothing_of(api: Api, outsider_token: str, team: Team) -> None:
    members = _members(api, outsider_token)
    assert not set(members) & team.emails()
    target = team.person("member").user_id
    for method, path, body in (
        ("PATCH", f"/api/organization/members/{target}", {"role": "viewer"}),
        ("DELETE", f"/api/organization/members/{target}", None),
        ("PATCH", f"/api/organization/members/{team.owner.user_id}", {"role": "admin"}),
    ):
        assert_error(api.call(method, path, body, token=outsider_token), 404, "user_id")
    answer = api.call(
        "POST", "/api/auth/switch-organization", {"organization_id": team.organization_id},
        token=outsider_token,
    )  # fmt: skip
    assert_error(answer, 403)


def test_another_organization_sees_and_changes_nothing_of_the_first(api: Api) -> None:
    team = new_team(api, roles=("member",))
    outsider = api.register()
    _assert_sees_nothing_of(api, outsider["token"], team)
    # Even a member of both, acting on the other organization, reaches only that one.
    both = join(api, outsider["token"], outsider["organization"]["id"], "admin")
    assert invite_and_accept(api, team.owner.token, both, "viewer").status == 200
    members = _members(api, both.token)
    assert team.owner.email not in members
    target = team.person("member").user_id
    assert_error(api.call("DELETE", f"/api/organization/members/{target}", token=both.token), 404)
    assert team.person("member").email in _members(api, team.owner.token)
