"""Plumbing shared by the sandbox's Amazon and Walmart routes: requests, answers, faults."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from dev.sandbox.state import Fault, SandboxState


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Interrupt(Exception):
    """Ends a call early with an answer, or with no answer at all (a reset connection)."""

    def __init__(self, answer: Answer | None) -> None:
        super().__init__(answer)
        self.answer = answer


def json_answer(status: int, document: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status,
        json.dumps(document).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def apply_faults(
    state: SandboxState, account: str, operation: str, throttled: Callable[[], Answer]
) -> None:
    """Counts the call and carries out whatever fault switch the account set for it."""
    call_number = state.count_call(account, operation)
    faults = state.faults(account)
    delay = faults.delay_for(operation)
    if delay:
        time.sleep(delay)
    fault = faults.fault_for(operation, call_number)
    if fault is Fault.RESET:
        raise Interrupt(None)
    if fault is Fault.BAD_GATEWAY:
        raise Interrupt(Answer(502))
    if fault is Fault.THROTTLE:
        raise Interrupt(throttled())


Handler = Callable[[SandboxState, Request, re.Match[str]], Answer]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, pattern: str, handler: Handler) -> Route:
    return Route(method, re.compile(pattern + "$"), handler)
