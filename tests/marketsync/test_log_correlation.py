"""A log line written while a request is served names its request and trace; with tracing off
(no OTEL_EXPORTER_OTLP_ENDPOINT, as in this test process) nothing about traces is installed."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from marketsync import tracing
from marketsync.logs import JsonFormatter, current_request_id, request_id_bound

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def formatted(message: str) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": message, "levelno": logging.INFO, "levelname": "INFO"})
    return dict(json.loads(JsonFormatter("sync").format(record)))


def test_a_line_of_a_request_carries_its_request_and_trace_id() -> None:
    remote = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))
    with request_id_bound("3f1c-request"), trace.use_span(NonRecordingSpan(remote)):
        line = formatted("sync queued")
    assert line["request_id"] == "3f1c-request"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_line_outside_any_request_names_none() -> None:
    line = formatted("serving")
    assert "request_id" not in line and "trace_id" not in line


def test_the_request_id_ends_with_its_block() -> None:
    with request_id_bound("outer"):
        with request_id_bound("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    assert current_request_id() == ""


def test_a_failed_span_says_why() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    with provider.get_tracer(__name__).start_as_current_span("sync run"):
        tracing.mark_span_failed("the marketplace refused the credentials")
    (span,) = exported.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "the marketplace refused the credentials"


def test_without_an_endpoint_tracing_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT_VARIABLE, raising=False)
    tracing.configure_tracing("sync")
    assert not tracing.tracing_enabled()
    assert tracing.server_interceptors() == []
    assert tracing.client_interceptors() == []
    assert tracing.current_traceparent() == ""
    with tracing.continued_span("sync run", f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"):
        assert tracing.current_trace_id() == ""
