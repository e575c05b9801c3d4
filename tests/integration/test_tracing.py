"""Traces and log correlation, as an operator sees them: the session's stack exports its spans
to the test's OTLP collector (conftest.py), and a REST request that arrives with a `traceparent`
is one trace across the gateway and every service it reaches."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from dev.stack import Stack
from tests.integration.conftest import Api, LogTail
from tests.integration.sync_support import (
    account,
    new_seller,
    save_credentials,
    wait_for_sync,
    walmart_credentials,
)
from tests.integration.trace_collector import CollectedSpan, TraceCollector

GATEWAY, AUTH, CATALOG, SYNC = (
    f"marketsync-{name}" for name in ("gateway", "auth", "catalog", "sync")
)


def traced_call(api: Api, method: str, path: str, token: str, body: Any = None) -> tuple[str, Any]:
    """Call the gateway as a traced client would; answers the trace id and the JSON answer."""
    trace_id = secrets.token_hex(16)
    headers = {
        "authorization": f"Bearer {token}",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    answer = api.client.request(method, path, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return trace_id, answer.json()


def log_lines(stack: Stack, process: str) -> list[dict[str, Any]]:
    """The JSON log lines the stack's process wrote lately."""
    assert isinstance(stack.log_sink, LogTail)
    tag = f"{process:<8}| "
    return [
        json.loads(line.removeprefix(tag))
        for line in list(stack.log_sink.lines)
        if line.startswith(tag) and line.removeprefix(tag).startswith("{")
    ]


def wait_for_log_lines(
    stack: Stack, process: str, wanted: Callable[[dict[str, Any]], bool], deadline: float = 30.0
) -> list[dict[str, Any]]:
    """The process's log lines that are `wanted`, once there is one (or none by the deadline)."""
    give_up = time.monotonic() + deadline
    while not (found := [line for line in log_lines(stack, process) if wanted(line)]):
        if time.monotonic() > give_up:
            break
        time.sleep(0.2)
    return found


def test_a_sync_started_through_the_gateway_is_one_trace_across_every_service(
    api: Api, stack: Stack, trace_collector: TraceCollector
) -> None:
    seller = new_seller(api)
    save_credentials(api, seller, "walmart", walmart_credentials(account("traced", 20)))

    trace_id, started = traced_call(
        api, "POST", "/api/sync", seller.token, {"marketplace": "walmart"}
    )
    assert wait_for_sync(api, seller.token, started["sync_id"])["status"] == "succeeded"

    every_service = {GATEWAY, SYNC, AUTH, CATALOG}
    start_sync = (SYNC, "/marketsync.sync.v1.SyncService/StartSync")
    enqueue = (AUTH, "/marketsync.auth.v1.AuthInternalService/EnqueueSync")
    run_span = (SYNC, "sync run")
    write = (CATALOG, "/marketsync.catalog.v1.CatalogInternalService/WriteSyncedProducts")

    def complete(spans: list[CollectedSpan]) -> bool:
        named = {(span.service, span.name): span for span in spans}
        gateway_spans = {span.span_id for span in spans if span.service == GATEWAY}
        return {start_sync, enqueue, run_span, write} <= set(named) and (
            named[start_sync].parent_span_id in gateway_spans
        )

    spans = trace_collector.wait_for(trace_id, complete)
    assert {span.service for span in spans} == every_service
    by_name = {(span.service, span.name): span for span in spans}
    start = by_name[start_sync]
    assert start.parent_span_id in {span.span_id for span in spans if span.service == GATEWAY}
    # The run, later on another task, continues the request's trace: sync pulls the products
    # and writes them to catalog, reporting to auth.
    run = by_name[run_span]
    children_of_run = {span.name for span in spans if span.parent_span_id == run.span_id}
    assert "/marketsync.auth.v1.AuthInternalService/FinishSyncLog" in children_of_run
    assert by_name[write].parent_span_id == run.span_id
    assert enqueue in by_name


def test_a_catalog_request_traces_the_session_check_with_auth(
    api: Api, trace_collector: TraceCollector
) -> None:
    seller = new_seller(api)

    trace_id, _ = traced_call(api, "GET", "/api/products", seller.token)

    list_products = (CATALOG, "/marketsync.catalog.v1.CatalogService/ListProducts")
    check_session = (AUTH, "/marketsync.auth.v1.AuthInternalService/CheckSession")
    wanted = {list_products, check_session}
    spans = trace_collector.wait_for(
        trace_id,
        lambda spans: (
            wanted <= {(span.service, span.name) for span in spans}
            and GATEWAY in {span.service for span in spans}
        ),
    )
    names = {(span.service, span.name) for span in spans}
    assert {list_products, check_session} <= names
    assert GATEWAY in {span.service for span in spans}


def test_every_log_line_of_a_request_carries_its_trace_and_request_id(
    api: Api, stack: Stack
) -> None:
    seller = new_seller(api)
    save_credentials(api, seller, "walmart", walmart_credentials(account("logged", 20)))

    trace_id, started = traced_call(
        api, "POST", "/api/sync", seller.token, {"marketplace": "walmart"}
    )
    wait_for_sync(api, seller.token, started["sync_id"])

    # Envoy writes its access log out every few seconds.
    (access,) = wait_for_log_lines(stack, "gateway", lambda line: line.get("trace_id") == trace_id)
    request_id = access["request_id"]
    sync_id = int(started["sync_id"])
    traced = [line for line in log_lines(stack, "sync") if line.get("sync_id") == sync_id]
    assert {line["msg"] for line in traced} >= {"sync queued", "sync started", "sync run ended"}
    assert {(line.get("trace_id"), line.get("request_id")) for line in traced} == {
        (trace_id, request_id)
    }
