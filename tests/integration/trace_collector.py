"""A small OTLP trace collector: the gRPC TraceService the stack's processes export spans to.

It keeps, of every span, what the tests look at: the process that sent it (the `service.name`
resource attribute), its trace, its name and its parent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

SERVICE = "service.name"


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str


class TraceCollector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self._spans: list[CollectedSpan] = []
        self._arrived = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = [
            CollectedSpan(
                service=_service_name(resource_spans.resource.attributes),
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                name=span.name,
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._arrived:
            self._spans.extend(spans)
            self._arrived.notify_all()
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans_of(self, trace_id: str) -> list[CollectedSpan]:
        with self._arrived:
            return [span for span in self._spans if span.trace_id == trace_id]

    def wait_for(
        self,
        trace_id: str,
        complete: Callable[[list[CollectedSpan]], bool],
        deadline: float = 30.0,
    ) -> list[CollectedSpan]:
        """The trace's spans once they are `complete`: processes export in batches, each when it
        will (Envoy every few seconds). By the deadline, what arrived: the caller's assertions
        then name what is missing."""
        give_up = time.monotonic() + deadline
        with self._arrived:
            while True:
                found = [span for span in self._spans if span.trace_id == trace_id]
                remaining = give_up - time.monotonic()
                if complete(found) or remaining <= 0:
                    return found
                self._arrived.wait(remaining)


def _service_name(attributes: Iterable[KeyValue]) -> str:
    found: list[KeyValue] = [
        attribute for attribute in attributes if attribute.key == "service.name"
    ]
    return found[0].value.string_value if found else ""
