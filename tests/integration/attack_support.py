"""What the attack probes share: the public REST routes read from the protos' `google.api.http`
options, the tokens an attacker tries, organizations full of data to attack, a seeded fuzzer of
malformed requests, and recorders of every REST answer and every line the stack logs.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from dev.stack import REPO
from tests.integration.auth_support import GRPC_CODES_BY_STATUS, Person, join, login, person_of
from tests.integration.conftest import Answer, Api, LogTail
from tests.integration.sync_support import (
    account,
    start_sync,
    wait_for_sync,
    walmart_credentials,
)

PROTO_ROOT = REPO / "protos"
_PATH_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


# ---- Routes, from the protos ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One REST binding of a public RPC, as its `google.api.http` option declares it."""

    service: str
    rpc: str
    method: str
    template: str
    body: str
    request: Descriptor

    @property
    def name(self) -> str:
        """`Service.Rpc`, without the package: the key of the route's cases."""
        return f"{self.service.rsplit('.', 1)[-1]}.{self.rpc}"

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def path_variables(self) -> tuple[str, ...]:
        return tuple(match.group(1) for match in _PATH_VARIABLE.finditer(self.template))

    def path(self, values: Mapping[str, str], *, encode: bool = True) -> str:
        """The template with its variables filled (percent-encoded unless `encode` is false)."""

        def fill(match: re.Match[str]) -> str:
            value = values[match.group(1)]
            return quote(value, safe="", errors="surrogatepass") if encode else value

        return _PATH_VARIABLE.sub(fill, self.template)

    def body_fields(self) -> tuple[FieldDescriptor, ...]:
        """The fields a JSON body carries: all but the path's for `*`, a message's for a field."""
        if self.body == "*":
            return tuple(f for f in self.request.fields if f.name not in self.path_variables)
        if self.body:
            message = self.request.fields_by_name[self.body].message_type
            assert message is not None, f"{self.label}: body {self.body!r} is not a message field"
            return tuple(message.fields)
        return ()

    def query_fields(self) -> tuple[FieldDescriptor, ...]:
        """The fields the query string may carry: those neither in the path nor the body."""
        if self.body == "*":
            return ()
        taken = {*self.path_variables, self.body}
        return tuple(f for f in self.request.fields if f.name not in taken)


def _proto_modules() -> list[ModuleType]:
    """The generated module of every proto under protos/marketsync, found by its file name."""
    modules = []
    for proto in sorted(PROTO_ROOT.glob("marketsync/**/*.proto")):
        parts = proto.relative_to(PROTO_ROOT).with_suffix("").parts
        modules.append(importlib.import_module(".".join(parts) + "_pb2"))
    return modules


def _bindings(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def services() -> tuple[ServiceDescriptor, ...]:
    """Every service of every proto."""
    return tuple(
        service
        for module in _proto_modules()
        for service in module.DESCRIPTOR.services_by_name.values()
    )


def public_routes() -> tuple[Route, ...]:
    """Every REST binding of every RPC of every proto, additional bindings included."""
    routes = []
    for service in services():
        for rpc in service.methods:
            options = rpc.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            for rule in _bindings(options.Extensions[annotations_pb2.http]):
                pattern = rule.WhichOneof("pattern")
                if pattern == "custom":
                    verb, template = rule.custom.kind.upper(), rule.custom.path
                else:
                    verb, template = str(pattern).upper(), str(getattr(rule, str(pattern)))
                routes.append(
                    Route(service.full_name, rpc.name, verb, template, rule.body, rpc.input_type)
                )
    return tuple(routes)


# ---- Tokens an attacker tries -----------------------------------------------------------------


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def expired_token(token: str, secret: str) -> str:
    now = int(time.time())
    return jwt.encode({**claims_of(token), "iat": now - 7200, "exp": now - 120}, secret, "HS256")


def token_of_another_key(token: str) -> str:
    return jwt.encode(claims_of(token), "an-attacker-key-" + "k" * 48, algorithm="HS256")


def alg_none_token(token: str) -> str:
    return f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims_of(token))}."


def malformed_token(token: str) -> str:
    """The token's segments in the wrong order, one of them not base64 at all."""
    header, payload, _ = token.split(".")
    return f"{payload}.{header}.!!not-base64!!"


def resigned(token: str, secret: str, **claims: str) -> str:
    """The token's claims with some replaced, signed with the real key (a leaked-key attack)."""
    return jwt.encode({**claims_of(token), **claims}, secret, algorithm="HS256")


# ---- Organizations to attack ------------------------------------------------------------------

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class OrgWorld:
    """An organization holding one of everything a route can name: members in roles, a pending
    invitation, a product with price history, Walmart credentials and a finished sync. Its
    strings are distinctive, so an answer carrying any of them carries this org's data."""

    organization_id: str
    name: str
    owner: Person
    viewer: Person
    member: Person
    invitation_id: str
    invitee_email: str
    sku: str
    title: str
    description: str
    prices: tuple[str, ...]
    sync_id: str
    owner_session_id: str
    masked_credentials: dict[str, str]

    def markers(self) -> tuple[str, ...]:
        """Strings only this organization's data holds."""
        return (
            self.name,
            self.owner.email,
            self.viewer.email,
            self.member.email,
            self.invitee_email,
            self.title,
            self.description,
            *self.prices,
            *self.masked_credentials.values(),
        )

    def ids(self) -> dict[str, set[str]]:
        """This organization's ids, by what they identify."""
        return {
            "organization": {self.organization_id},
            "user": {self.owner.user_id, self.viewer.user_id, self.member.user_id},
            "session": {self.owner_session_id},
            "invitation": {self.invitation_id},
            "sync": {self.sync_id},
        }


def fresh_token(api: Api, person: Person, organization_id: str | None = None) -> str:
    """A token of a new session of the person (in the organization when given)."""
    fields = {"organization_id": organization_id} if organization_id else {}
    answer = login(api, person.email, person.password, **fields)
    assert answer.status == 200, answer.body
    return str(answer.body["token"])


def build_org(api: Api, label: str) -> OrgWorld:
    tag = uuid.uuid4().hex[:12]
    name = f"{label} Org {tag}"
    registered = api.register(organization_name=name)
    owner = person_of(registered)
    organization_id = str(registered["organization"]["id"])
    viewer = join(api, owner.token, organization_id, "viewer")
    member = join(api, owner.token, organization_id, "member")
    invitee_email = f"invitee-{tag}@example.com"
    invited = api.call(
        "POST", "/api/organization/members", {"email": invitee_email, "role": "member"},
        token=owner.token,
    )  # fmt: skip
    assert invited.status == 200, invited.body
    sku = f"{label.upper()}-SKU-{tag}"
    title, description = f"{label} title {tag}", f"{label} description {tag}"
    cents = int(tag[:6], 16) % 900_000 + 100_000
    prices = (f"{cents // 100}.{cents % 100:02d}", f"{cents // 100 + 1}.{cents % 100:02d}")
    for price in prices:
        stored = api.call(
            "PUT", f"/api/products/{sku}",
            {"title": title, "description": description, "price": price, "currency": "USD",
             "inventory_quantity": 3},
            token=owner.token,
        )  # fmt: skip
        assert stored.status == 200, stored.body
    saved = api.call(
        "PUT", "/api/credentials/walmart",
        {"credentials": walmart_credentials(
            account(f"{label.lower()}-client-{tag}", 3),
            client_secret=f"{label.lower()}-secret-{tag}",
        )},
        token=owner.token,
    )  # fmt: skip
    assert saved.status == 200, saved.body
    sync_id = start_sync(api, owner.token, "walmart")
    assert wait_for_sync(api, owner.token, sync_id)["status"] == "succeeded"
    return OrgWorld(
        organization_id=organization_id,
        name=name,
        owner=owner,
        viewer=viewer,
        member=member,
        invitation_id=str(invited.body["invitation"]["id"]),
        invitee_email=invitee_email,
        sku=sku,
        title=title,
        description=description,
        prices=prices,
        sync_id=sync_id,
        owner_session_id=str(claims_of(owner.token)["sid"]),
        masked_credentials=dict(saved.body["masked"]),
    )


def assert_org_intact(api: Api, world: OrgWorld) -> None:
    """Everything build_org made is still there, unchanged, and the owner's session is open."""
    token = world.owner.token
    me = api.call("GET", "/api/auth/me", token=token)
    assert me.status == 200, ("the owner's session was ended", me.body)
    assert (me.body["organization_id"], me.body["role"]) == (world.organization_id, "owner")
    members = api.call("GET", "/api/organization/members", token=token)
    assert members.status == 200, members.body
    roles = {member["user_id"]: member["role"] for member in members.body["members"]}
    assert roles == {
        world.owner.user_id: "owner",
        world.viewer.user_id: "viewer",
        world.member.user_id: "member",
    }, roles
    invitations = api.call("GET", "/api/organization/invitations", token=token)
    assert invitations.status == 200, invitations.body
    assert [i["id"] for i in invitations.body["invitations"]] == [world.invitation_id]
    product = api.call("GET", f"/api/products/{world.sku}", token=token)
    assert product.status == 200, product.body
    assert (product.body["title"], product.body["price"]) == (world.title, world.prices[-1])
    history = api.call("GET", f"/api/products/{world.sku}/price-history", token=token)
    assert [point["price"] for point in history.body["points"]] == list(world.prices)
    credentials = api.call("GET", "/api/credentials", token=token)
    assert [(c["marketplace"], c["masked"]) for c in credentials.body["credentials"]] == [
        ("walmart", world.masked_credentials)
    ]
    sync = api.call("GET", f"/api/sync/{world.sync_id}", token=token)
    assert (sync.status, sync.body["status"]) == (200, "succeeded"), sync.body
    sessions = api.call("GET", "/api/auth/sessions", token=token)
    assert world.owner_session_id in {s["id"] for s in sessions.body["sessions"]}


# ---- Checking answers -------------------------------------------------------------------------

# JSON paths (keys only, innermost last) whose value is an id, by what it identifies.
_ID_PATHS: dict[tuple[str, ...], str] = {
    ("organization_id",): "organization",
    ("organization", "id"): "organization",
    ("organizations", "id"): "organization",
    ("user", "id"): "user",
    ("user_id",): "user",
    ("sessions", "id"): "session",
    ("invitation", "id"): "invitation",
    ("invitations", "id"): "invitation",
    ("sync_id",): "sync",
}


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, (*path, str(key)))
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner, path)
    else:
        yield path, value


def foreign_data(body: Any, world: OrgWorld) -> list[str]:
    """What of the organization's data an answer holds: its strings anywhere, its ids where an
    answer puts ids of that kind."""
    found = []
    ids = world.ids()
    markers = world.markers()
    for path, value in _walk(body):
        text = str(value)
        found += [f"{'.'.join(path)} holds {marker!r}" for marker in markers if marker in text]
        kind = _ID_PATHS.get(path[-2:]) or _ID_PATHS.get(path[-1:])
        if kind and text in ids[kind]:
            found.append(f"{'.'.join(path)} = {text} is the victim's {kind} id")
    return found


def answer_problems(answer: Answer) -> list[str]:
    """What is wrong with an answer any client may get: a 5xx, or a body that is not JSON, or
    an error without its gRPC `code` (matching the status) and a `message`."""
    problems = []
    if answer.status >= 500:
        problems.append(f"a server error {answer.status}")
    if not answer.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {answer.headers.get('content-type')!r}, not JSON")
    if not isinstance(answer.body, dict):
        problems.append("a body that is not a JSON object")
    elif answer.status >= 400:
        code, message = answer.body.get("code"), answer.body.get("message")
        if not isinstance(code, int) or code == 0:
            problems.append(f"no gRPC code in the error ({code!r})")
        elif (
            answer.status in GRPC_CODES_BY_STATUS
            and code not in GRPC_CODES_BY_STATUS[answer.status]
        ):
            problems.append(f"gRPC code {code} does not go with HTTP {answer.status}")
        if not isinstance(message, str) or not message:
            problems.append("no message in the error")
    return problems


def shorten(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# ---- Recorders --------------------------------------------------------------------------------


class Transcript:
    """Every request a client sends while it records, and the answer it got, as text."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self.entries: list[str] = []

    def _record(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        self.entries.append(
            f"{request.method} {request.url} -> {response.status_code}\n"
            + "".join(f"{name}: {value}\n" for name, value in response.headers.items())
            + response.text
        )

    def __enter__(self) -> Transcript:
        self._client.event_hooks["response"].append(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.event_hooks["response"].remove(self._record)


class LogCapture:
    """Every line the stack's processes print while it records, all of them (the session's
    sink keeps only its last few hundred): it listens to the sink, which every relay thread
    writes each line to."""

    def __init__(self, sink: LogTail) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._chunks: list[str] = []

    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)

    def wait_for(self, text: str, timeout: float) -> None:
        """Until `text` was logged: Envoy writes its access log out every few seconds only."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert time.monotonic() < deadline, f"{text!r} did not reach the log in {timeout} s"
            time.sleep(0.1)

    def _record(self, text: str) -> None:
        with self._lock:
            self._chunks.append(text)

    def __enter__(self) -> LogCapture:
        self._sink.listeners.append(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self._sink.listeners.remove(self._record)


# ---- A seeded fuzzer of malformed requests ----------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request exactly as sent, to replay a finding."""

    kind: str
    method: str
    target: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    def describe(self) -> str:
        body = (
            ""
            if self.content is None
            else f" body={shorten(self.content.decode('utf-8', 'replace'))}"
        )
        return f"[{self.kind}] {self.method} {self.target} headers={self.headers}{body}"

    def send(self, api: Api, token: str) -> Answer:
        response = api.client.request(
            self.method,
            self.target,
            content=self.content,
            headers={**self.headers, "authorization": f"Bearer {token}"},
        )
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = response.text
        return Answer(response.status_code, parsed, response.headers)


# Placeholder a JSON body carries where a raw token (a number JSON cannot hold) goes.
_RAW = "\u0000raw\u0000"
INTEGER_EXTREMES = (
    "-1", "0", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "18446744073709551616",
    "1" + "0" * 40, "1e400", "-1e400", "1.5", "-0", "1e3", "0.0000001", "NaN", "Infinity",
)  # fmt: skip
ODD_STRINGS = (
    "", " ", "\u0000", "a\u0000b", "\u0001\u001f\u007f", "\u202eevil", "\ufeffbom", "\u2028\u2029",
    "\ud800", "\udfff\ud800", "😀" * 300, "e\u0301" * 50, "'; DROP TABLE users; --",
    "${jndi:ldap://x/a}", "../../etc/passwd", "\\", '"', "%00%ff", "<script>alert(1)</script>",
    "x" * 100_000, "\t\n\r", "\uff21\uff22\uff23", "null", "[]",
)  # fmt: skip
PATH_JUNK = (
    "%00", "%ZZ", "%", "%2F", "a%2Fb", "%2e%2e", "%2e%2e%2f%2e%2e%2fauth%2fme", "%E2%80%AE", "%FF",
    "%C0%AF", "%EF%BF%BF", "%ED%A0%80", "a" * 5000, "%25", "%20", "-1", "0",
    "99999999999999999999", "1.5", "1e3", "0x1F", "%7B%7D", ";x=1", "*", "~", "%23frag",
    "a%3Fb%3Dc", "%0D%0ASet-Cookie:x", "%5C..%5C", "%3A", "%40", "%22",
)  # fmt: skip
RAW_BODIES = (
    b"{not json", b'{"a": ', b"[1, 2", b'"a string"', b"12", b"null", b"true", b"[]",
    b"\xff\xfe\x00g\x00a", b'{"a": "\xff\xfe"}', b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 300 + b"1" + b"}" * 300, b" " * 200_000, b"\x00" * 16, b'{"a": 1}{"b": 2}',
    b'{"a": 1,}', b"{'a': 1}", b'{"\\ud800": 1}', b'{"a": "\\u0000"}',
)  # fmt: skip
CONTENT_TYPES = (
    "text/plain", "application/x-www-form-urlencoded", "application/grpc",
    "application/grpc-web+proto", "application/grpc+json", "multipart/form-data; boundary=x",
    "application/json; charset=utf-16", "application/xml", "",
)  # fmt: skip
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _urlencode(query: Mapping[str, str]) -> str:
    return urlencode(query, encoding="utf-8", errors="surrogatepass")


def _wrong_type_values(field: FieldDescriptor) -> tuple[Any, ...]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return ([{"k": "v"}], "k=v", 12, {"k": {"nested": 1}}, {"k": 12}, {"k": None}, {"": ""})
    if field.is_repeated:
        return ("one", 12, {"a": 1}, [[1]], [None], True, [{"a": [1]}])
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return ("a string", 12, [1, 2], True, {"unknown": {"deep": 1}}, {"seconds": "x"})
    if field.type == FieldDescriptor.TYPE_STRING:
        return (12, 1.5, True, {"a": 1}, ["a"], -1)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return ("yes", 2, {"a": 1}, [True])
    return ("abc", "12abc", 1.5, True, {"a": 1}, [1], "0x10", "", " 1")


def _is_numeric(field: FieldDescriptor) -> bool:
    return field.cpp_type in (
        FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64,
        FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT,
    )  # fmt: skip


class Fuzzer:
    """Malformed variations of one valid request to a route, drawn from a seeded random."""

    KINDS = (
        "wrong type", "extreme number", "odd string", "empty or absent", "extra fields",
        "raw body", "query", "path segment", "wrong method", "content type",
    )  # fmt: skip

    def __init__(
        self,
        route: Route,
        path_values: Mapping[str, str],
        body: Any,
        rng: random.Random,
    ) -> None:
        self.route = route
        self.path_values = dict(path_values)
        self.body = body if route.body else None
        self.rng = rng

    def probes(self, count: int) -> list[Probe]:
        """`count` probes, every kind at least once when `count` allows, in a seeded order."""
        kinds = list(self.KINDS)
        self.rng.shuffle(kinds)
        return [self._probe(kinds[number % len(kinds)]) for number in range(count)]

    # The parts of a request a mutation starts from.

    def _target(self, path_values: Mapping[str, str] | None = None, query: str = "") -> str:
        path = self.route.path(path_values or self.path_values)
        return f"{path}?{query}" if query else path

    def _json(self, body: Any) -> bytes:
        """JSON text, escaped to ASCII or not (then a lone surrogate is invalid UTF-8)."""
        text = json.dumps(body, ensure_ascii=self.rng.random() < 0.5)
        return text.encode("utf-8", "surrogatepass")

    def _with_field(self, value: Any, raw: str | None = None) -> tuple[str, bytes | None, str]:
        """A body (or query) where one field of the request is `value`; `raw` replaces it
        verbatim in the JSON text. Answers the field's name, the body and the query."""
        fields = self.route.body_fields() or self.route.query_fields()
        if not fields:
            return "-", self._json({"unexpected": value}), ""
        chosen = self.rng.choice(fields)
        if self.route.body_fields():
            body = dict(self.body or {})
            body[chosen.json_name if self.rng.random() < 0.3 else chosen.name] = (
                _RAW if raw is not None else value
            )
            text = self._json(body)
            if raw is not None:
                text = text.replace(json.dumps(_RAW).encode(), raw.encode())
            return chosen.name, text, ""
        query_value = (
            raw if raw is not None else (value if isinstance(value, str) else json.dumps(value))
        )
        # A URL carries a few KiB (Envoy refuses more than 12 KiB of headers with a 431).
        return chosen.name, self._body_bytes(), _urlencode({chosen.name: query_value[:5000]})

    def _body_bytes(self) -> bytes | None:
        return None if self.body is None else self._json(self.body)

    def _probe(self, kind: str) -> Probe:
        make: Callable[[], Probe] = getattr(self, "_" + kind.replace(" ", "_"))
        return make()

    # One method per kind.

    def _wrong_type(self) -> Probe:
        fields = self.route.body_fields() or self.route.query_fields()
        if not fields:
            return Probe("wrong type", self.route.method, self._target(), self._json([self.body]))
        chosen = self.rng.choice(fields)
        value = self.rng.choice(_wrong_type_values(chosen))
        if self.route.body_fields():
            body = {**(self.body or {}), chosen.name: value}
            return Probe(
                f"wrong type: {chosen.name}", self.route.method, self._target(), self._json(body)
            )
        query = _urlencode({chosen.name: value if isinstance(value, str) else json.dumps(value)})
        return Probe(f"wrong type: {chosen.name}", self.route.method, self._target(query=query))

    def _extreme_number(self) -> Probe:
        number = self.rng.choice(INTEGER_EXTREMES)
        numeric = [f for f in self.route.request.fields if _is_numeric(f)]
        if (
            numeric
            and self.rng.random() < 0.5
            and set(self.route.path_variables) & {f.name for f in numeric}
        ):
            variable = self.rng.choice(
                [name for name in self.route.path_variables if name in {f.name for f in numeric}]
            )
            values = {**self.path_values, variable: number}
            return Probe(
                f"extreme number in the path: {variable}",
                self.route.method,
                self._target(values),
                self._body_bytes(),
            )
        quoted = self.rng.random() < 0.3
        name, content, query = self._with_field(number, None if quoted else number)
        return Probe(
            f"extreme number: {name}", self.route.method, self._target(query=query), content
        )

    def _odd_string(self) -> Probe:
        text = self.rng.choice(ODD_STRINGS)
        if self.route.path_variables and self.rng.random() < 0.4:
            variable = self.rng.choice(self.route.path_variables)
            values = {**self.path_values, variable: text[:5000]}
            return Probe(
                f"odd string in the path: {variable}",
                self.route.method,
                self._target(values),
                self._body_bytes(),
            )
        name, content, query = self._with_field(text)
        return Probe(f"odd string: {name}", self.route.method, self._target(query=query), content)

    def _empty_or_absent(self) -> Probe:
        choice = self.rng.randrange(5)
        if choice == 0 or not self.body or not isinstance(self.body, dict):
            return Probe("empty body", self.route.method, self._target(), b"")
        if choice == 1:
            return Probe("empty object", self.route.method, self._target(), b"{}")
        if choice == 2:
            return Probe("no body, no content type", self.route.method, self._target(), None, {})
        name = self.rng.choice(sorted(self.body))
        if choice == 3:
            body = {key: value for key, value in self.body.items() if key != name}
            return Probe(f"absent: {name}", self.route.method, self._target(), self._json(body))
        value: object = self.rng.choice(("", None, [], {}))
        return Probe(
            f"empty: {name}={value!r}",
            self.route.method,
            self._target(),
            self._json({**self.body, name: value}),
        )

    def _extra_fields(self) -> Probe:
        extra = self.rng.choice(
            (
                {"unknown_field": "x"},
                {"organization_id": "1", "org": "1", "role": "owner", "user_id": "1"},
                {"@type": "type.googleapis.com/marketsync.auth.v1.GetMeRequest", "x": 1},
                {"__proto__": {"admin": True}, "constructor": {"prototype": {}}},
                {"nested": {"deeper": [{"deepest": None}] * 50}},
                {"listings": [{"marketplace": "amazon", "status": "x"}], "created_at": "1970"},
                {"x" * 10_000: "long key"},
            )
        )
        body = {**(self.body or {}), **extra} if isinstance(self.body, dict) else extra
        return Probe("extra fields", self.route.method, self._target(), self._json(body))

    def _raw_body(self) -> Probe:
        content = self.rng.choice(RAW_BODIES)
        return Probe("raw body", self.route.method, self._target(), content)

    def _query(self) -> Probe:
        junk_token = base64.urlsafe_b64encode(self.rng.randbytes(self.rng.randrange(1, 200)))
        forged_token = base64.urlsafe_b64encode(json.dumps({"org": 1, "after": "x"}).encode())
        query = self.rng.choice(
            (
                "page_size=abc", "page_size=-5", "page_size=0", "page_size=101",
                "page_size=99999999999999999999", "page_size=1.5", "page_size=", "page_size",
                f"page_token={junk_token.decode()}", f"page_token={forged_token.decode()}",
                "page_token=%00%FF", "page_token=" + "A" * 5000, "page_size=1&page_size=2",
                "marketplace=ebay", "marketplace=%00", "unknown=1", "organization_id=1",
                "product.sku=x", "%ZZ=1", "a=%ZZ", "=", "&&&", "page_token[]=x",
            )
        )  # fmt: skip
        return Probe("query", self.route.method, self._target(query=query), self._body_bytes())

    def _path_segment(self) -> Probe:
        junk = self.rng.choice(PATH_JUNK)
        if self.route.path_variables:
            variable = self.rng.choice(self.route.path_variables)
            values = {**self.path_values, variable: junk}
            target = self.route.path(values, encode=False)
        else:
            target = self.route.path(self.path_values) + self.rng.choice(("/", "", "%2F")) + junk
        return Probe("path segment", self.route.method, target, self._body_bytes())

    def _wrong_method(self) -> Probe:
        method = self.rng.choice([m for m in METHODS if m != self.route.method])
        return Probe("wrong method", method, self._target(), self._body_bytes())

    def _content_type(self) -> Probe:
        content_type = self.rng.choice(CONTENT_TYPES)
        content = self._body_bytes() or b"{}"
        if "utf-16" in content_type:
            content = content.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
        elif "urlencoded" in content_type and isinstance(self.body, dict):
            content = _urlencode({k: json.dumps(v) for k, v in self.body.items()}).encode()
        headers = {"content-type": content_type} if content_type else {}
        return Probe(
            f"content type {content_type!r}", self.route.method, self._target(), content, headers
        )
