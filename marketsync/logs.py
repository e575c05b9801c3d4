"""Structured logs: one JSON object per line on stderr, tagged with the service name.

A line written while a request is served carries its `request_id` (Envoy's `x-request-id`,
passed on to every internal call) and `trace_id` (where tracing is on, see marketsync.tracing),
so one request's lines can be found in every service, beside its trace.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from marketsync.tracing import current_trace_id

REQUEST_ID_METADATA_KEY = "x-request-id"
_request_id: ContextVar[str] = ContextVar("request_id", default="")

# Attributes every LogRecord has; anything else passed with `extra=` is an event field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in (("request_id", current_request_id()), ("trace_id", current_trace_id())):
            if value:
                event[key] = value
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES:
                event[key] = value
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore and httpx log request details (and sometimes headers) at DEBUG/INFO.
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "sp_api"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Tag this task's log lines (and its internal calls) with `request_id` until the block ends."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)
