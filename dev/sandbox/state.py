"""What the sandbox remembers: issued tokens, reports, fault switches, call counts and times.

Everything is keyed by the account a call acts for (the Amazon refresh token, the Walmart
client id), so tests running in parallel against one sandbox never see each other's faults.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# IN_PROGRESS: a report that never finishes.
REPORT_OUTCOMES = ("DONE", "CANCELLED", "FATAL", "IN_PROGRESS")
# An account's timeline keeps its latest calls only.
TIMELINE_LENGTH = 1000


class Fault(Enum):
    """What a fault switch makes the sandbox do with a call instead of answering it."""

    THROTTLE = "throttle"
    BAD_GATEWAY = "bad_gateway"
    RESET = "reset"


# Fault switches taking `{operation: N}` fire on the first call of that operation ("*": any)
# and every Nth after it, so even an operation called once in a sync meets its fault.
_EVERY_NTH = {
    "throttle_every": Fault.THROTTLE,
    "bad_gateway_every": Fault.BAD_GATEWAY,
    "reset_every": Fault.RESET,
}


@dataclass
class Faults:
    throttle_every: dict[str, int] = field(default_factory=dict)
    bad_gateway_every: dict[str, int] = field(default_factory=dict)
    reset_every: dict[str, int] = field(default_factory=dict)
    delay_seconds: dict[str, float] = field(default_factory=dict)
    token_expires_after: int | None = None
    report_outcome: str = "DONE"
    bad_price_every: int | None = None
    # Operations ("*": any) whose every page, the second included, points at the second page.
    repeat_cursor: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Faults:
        unknown = set(document) - set(cls.__dataclass_fields__) - {"account"}
        if unknown:
            raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}")
        faults = cls(**{key: value for key, value in document.items() if key != "account"})
        if faults.report_outcome not in REPORT_OUTCOMES:
            raise ValueError(f"report_outcome must be one of {', '.join(REPORT_OUTCOMES)}")
        return faults

    def fault_for(self, operation: str, call_number: int) -> Fault | None:
        for switch, fault in _EVERY_NTH.items():
            every: dict[str, int] = getattr(self, switch)
            period = every.get(operation, every.get("*"))
            if period and (call_number - 1) % period == 0:
                return fault
        return None

    def next_offset(self, operation: str, offset: int, page_size: int, total: int) -> int | None:
        """Where the page after this one starts; None after the last page."""
        if operation in self.repeat_cursor or "*" in self.repeat_cursor:
            return page_size
        return offset + page_size if offset + page_size < total else None

    def delay_for(self, operation: str) -> float:
        return self.delay_seconds.get(operation, self.delay_seconds.get("*", 0.0))


@dataclass
class TokenGrant:
    account: str
    calls: int = 0


@dataclass
class Report:
    account: str
    polls: int = 0


class SandboxState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Faults] = {}
        self._calls: dict[str, Counter[str]] = {}
        self._timelines: dict[str, deque[tuple[str, float]]] = {}
        self._tokens: dict[str, TokenGrant] = {}
        self._reports: dict[str, Report] = {}
        self._documents: dict[str, str] = {}

    def set_faults(self, account: str, faults: Faults) -> None:
        with self._lock:
            self._faults[account] = faults

    def faults(self, account: str) -> Faults:
        with self._lock:
            return self._faults.get(account, Faults())

    def count_call(self, account: str, operation: str) -> int:
        with self._lock:
            calls = self._calls.setdefault(account, Counter())
            calls[operation] += 1
            timeline = self._timelines.setdefault(account, deque(maxlen=TIMELINE_LENGTH))
            timeline.append((operation, time.monotonic()))
            return calls[operation]

    def stats(self, account: str) -> dict[str, int]:
        with self._lock:
            return dict(self._calls.get(account, Counter()))

    def timeline(self, account: str) -> list[tuple[str, float]]:
        """The account's latest calls in the order they came, each with when (monotonic)."""
        with self._lock:
            return list(self._timelines.get(account, ()))

    def issue_token(self, account: str, prefix: str) -> str:
        token = f"{prefix}|{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[token] = TokenGrant(account)
        return token

    def use_token(self, token: str) -> tuple[str, bool] | None:
        """The account a token acts for and whether it has expired; None for an unknown token."""
        with self._lock:
            grant = self._tokens.get(token)
            if grant is None:
                return None
            grant.calls += 1
            limit = self._faults.get(grant.account, Faults()).token_expires_after
            return grant.account, limit is not None and grant.calls > limit

    def create_report(self, account: str) -> str:
        report_id = str(secrets.randbelow(10**11) + 10**11)
        with self._lock:
            self._reports[report_id] = Report(account)
        return report_id

    def poll_report(self, account: str, report_id: str) -> int | None:
        """How many times the account has polled the report, this poll included."""
        with self._lock:
            report = self._reports.get(report_id)
            if report is None or report.account != account:
                return None
            report.polls += 1
            return report.polls

    def document_id(self, account: str, report_id: str) -> str:
        document_id = f"amzn1.spdoc.1.4.na.{report_id}"
        with self._lock:
            self._documents[document_id] = account
        return document_id

    def document_account(self, document_id: str) -> str | None:
        with self._lock:
            return self._documents.get(document_id)
