"""Helpers shared by the auth integration tests: error answers, teams of users in roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.integration.conftest import Answer, Api

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
# gRPC codes as Envoy prints them in the JSON error body, by HTTP status: 400 is either
# INVALID_ARGUMENT or FAILED_PRECONDITION.
GRPC_CODES_BY_STATUS = {400: {3, 9}, 401: {16}, 403: {7}, 404: {5}, 409: {6}, 429: {8}}
AMAZON_FIELDS = {
    "refresh_token": "Atzr|refresh-token-value-0001",
    "lwa_app_id": "amzn1.application-oa2-client.0002",
    "lwa_client_secret": "lwa-client-secret-value-0003",
    "seller_id": "A1SELLER0004",
}
WALMART_FIELDS = {"client_id": "walmart-client-id-0005", "client_secret": "walmart-secret-0006"}


def assert_error(answer: Answer, status: int, *message_parts: str) -> None:
    """The answer is the given error status with a JSON `code` and `message` naming the parts."""
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    assert isinstance(answer.body, dict), answer.body
    assert isinstance(answer.body.get("message"), str) and answer.body["message"], answer.body
    assert answer.body["code"] in GRPC_CODES_BY_STATUS[status], answer.body
    for part in message_parts:
        assert part in answer.body["message"], answer.body


def login(api: Api, email: str, password: str, **fields: Any) -> Answer:
    return api.call("POST", "/api/auth/login", {"email": email, "password": password, **fields})


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    password: str
    token: str


@dataclass(frozen=True)
class Team:
    """An organization whose owner registered it, plus one member per other role."""

    organization_id: str
    owner: Person
    by_role: dict[str, Person]

    def person(self, role: str) -> Person:
        return self.owner if role == "owner" else self.by_role[role]

    def emails(self) -> set[str]:
        return {self.owner.email, *(person.email for person in self.by_role.values())}


def person_of(registered: dict[str, Any]) -> Person:
    return Person(
        user_id=registered["user"]["id"],
        email=registered["user"]["email"],
        password=registered["password"],
        token=registered["token"],
    )


def invite_and_accept(api: Api, inviter_token: str, invitee: Person, role: str) -> Answer:
    """Invite the person in the role with the inviter's token, then accept as the person;
    answers the accept."""
    invited = api.call(
        "POST", "/api/organization/members", {"email": invitee.email, "role": role},
        token=inviter_token,
    )  # fmt: skip
    assert invited.status == 200, invited.body
    invitation_id = invited.body["invitation"]["id"]
    return api.call("POST", f"/api/invitations/{invitation_id}:accept", {}, token=invitee.token)


def join(api: Api, owner_token: str, organization_id: str, role: str) -> Person:
    """A new user invited into the organization in the role, who accepted and holds a token
    for it."""
    newcomer = person_of(api.register())
    accepted = invite_and_accept(api, owner_token, newcomer, role)
    assert accepted.status == 200, accepted.body
    switched = api.call(
        "POST", "/api/auth/switch-organization", {"organization_id": organization_id},
        token=newcomer.token,
    )  # fmt: skip
    assert switched.status == 200, switched.body
    return Person(newcomer.user_id, newcomer.email, newcomer.password, switched.body["token"])


def new_team(api: Api, roles: tuple[str, ...] = ("admin", "member", "viewer")) -> Team:
    registered = api.register()
    owner = person_of(registered)
    organization_id = registered["organization"]["id"]
    members = {role: join(api, owner.token, organization_id, role) for role in roles}
    return Team(organization_id, owner, members)
