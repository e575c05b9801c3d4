"""Envoy's configuration, rendered from one definition for the local stack and Kubernetes.

Envoy transcodes REST/JSON to gRPC for the public services only (routes match the gRPC path the
transcoder produced, so internal services are never reachable), answers every error it makes
itself as JSON with `code` and `message` like the transcoded gRPC errors, strips the service
credential header from outside requests, and answers `/healthz` from the clusters' gRPC health.

It is the public edge, so no one client may use up what every client shares: a connection
carries at most 100 streams, a request must arrive within its timeouts (slow clients get a 408
and are disconnected), a request is buffered in Envoy until complete (an unfinished request never
reaches a service), each cluster has its own circuit breakers, and the overload manager caps
connections and memory for the whole process.

Prometheus scrapes Envoy's own stats on a listener of their own (`--stats-port`), which
answers `GET /stats/prometheus` from the admin interface and nothing else: the admin interface
itself, which can change and stop Envoy, stays on loopback.

Usage: python -m gateway.envoy_config OUTPUT.json --port 8080 --admin-port 9901 --stats-port 9902
       --descriptor gateway/descriptor.pb --auth HOST:PORT --catalog HOST:PORT --sync HOST:PORT
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marketsync.service_auth import SERVICE_METADATA_KEY

# Cluster name -> the public gRPC services it serves; the first is the one health-checked.
PUBLIC_SERVICES: dict[str, tuple[str, ...]] = {
    "auth": ("marketsync.auth.v1.AuthService", "marketsync.auth.v1.CredentialsService"),
    "catalog": ("marketsync.catalog.v1.CatalogService",),
    "sync": ("marketsync.sync.v1.SyncService",),
}
# Envoy refuses larger headers itself (431, JSON, naming no header). The services' gRPC metadata
# limits (marketsync.server) sit above the most Envoy can forward within these, so a request
# Envoy accepts is never refused, or randomly refused, by gRPC: see `forwarded_headers_bound`.
MAX_REQUEST_HEADERS_KB = 12
# Envoy's default, stated because the bound above depends on it.
MAX_REQUEST_HEADERS_COUNT = 100
# Envoy's own replies by HTTP status: the gRPC code they carry (as the transcoder's errors do)
# and their message: Envoy's text where it says something, ours where it is empty or terse.
ENVOY_TEXT = "%LOCAL_REPLY_BODY%"
LOCAL_REPLIES: dict[int, tuple[int, str]] = {
    # Envoy's text is empty for a request its codec refuses (a NUL in the path, say).
    400: (3, f"the request is malformed: {ENVOY_TEXT}"),
    404: (5, ENVOY_TEXT),
    408: (4, "the request took too long to arrive"),
    413: (3, "the request body is larger than 8 MiB"),
    # Too large or too many (past either limit above).
    431: (
        3,
        f"the request headers exceed {MAX_REQUEST_HEADERS_KB} KiB"
        f" or {MAX_REQUEST_HEADERS_COUNT} fields",
    ),
    503: (14, "a service is unavailable; try again shortly"),
}
# A REST client has no business setting the gRPC protocol headers Envoy would pass on: a
# `grpc-timeout: 1n` or a bogus `grpc-encoding` makes the service fail the call.
GRPC_PROTOCOL_HEADERS = (
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-previous-rpc-attempts",
)
MAX_REQUEST_BYTES = 8 * 1024 * 1024

# How long a service may take to answer (the route timeout).
ROUTE_TIMEOUT_SECONDS = 60
# A client sends its headers in one round trip; one that trickles them in (slowloris) is answered
# 408 and disconnected after this.
REQUEST_HEADERS_TIMEOUT_SECONDS = 10
# The whole request, body included: the largest body (8 MiB) needs about 2.2 Mbit/s. Until the
# body is complete the request waits in Envoy's buffer filter and never reaches a service.
REQUEST_TIMEOUT_SECONDS = 30
# A stream nobody moves (say a client that never reads its answer, which holds the upstream
# stream): just past the route timeout, so a slow service still answers 504 from the route.
STREAM_IDLE_TIMEOUT_SECONDS = ROUTE_TIMEOUT_SECONDS + 5
# A connection without a request in flight, including one that never sends a byte (Envoy's
# default is an hour).
CONNECTION_IDLE_TIMEOUT_SECONDS = 60
# Streams one HTTP/2 connection may have open at once. Envoy's default, 1,024, let one
# connection fill a whole cluster's circuit breaker; 100 is a fifth of the one below.
MAX_CONCURRENT_STREAMS = 100
# Open downstream connections in the whole Envoy process; past it new ones are refused at accept.
# Measured on Envoy 1.40: a connection holding a partial request takes about 20 KiB of heap, an
# open stream about 25 KiB, so 5,000 connections take half the heap budget below and leave the
# rest to their streams (the heap's own overload actions below guard the rest).
MAX_DOWNSTREAM_CONNECTIONS = 5000
# The heap Envoy may use. Kubernetes limits the gateway container to 256 MiB
# (deploy/k8s/base/gateway.yaml); the rest is the binary, thread stacks and allocator slack.
MAX_HEAP_BYTES = 192 * 1024 * 1024
# Per cluster, per Envoy replica, how many requests may be in flight to its services and how
# many may wait for a connection to them (Envoy's defaults: 1,024 each). A service replica
# works on a few dozen requests at once (32 worker threads; auth has 10 database connections),
# so 512 in flight is already a queue of a second or more even for two replicas: past it Envoy
# answers 503 (JSON, code 14) at once rather than let requests queue toward the route timeout.
# Requests wait for a connection only while Envoy (re)connects to a service, within the connect
# timeout; half as many may wait.
MAX_UPSTREAM_REQUESTS = 512
MAX_PENDING_UPSTREAM_REQUESTS = 256
# A request that never reached a service (the connection was refused, or the service refused the
# stream while stopping) is sent again, to another replica: a rollout loses no request. Nothing
# that may have run is retried, so no call runs twice.
RETRY_POLICY: dict[str, Any] = {
    "retry_on": "connect-failure,refused-stream,reset-before-request",
    "num_retries": 2,
    "retry_host_predicate": [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            },
        }
    ],
    "host_selection_retry_max_attempts": 3,
}
# How often Envoy resolves a service's name again. A headless Service's name answers every ready
# pod, so pods that come and go are seen within this (CoreDNS answers with a 5 s TTL by default).
DNS_REFRESH_SECONDS = 5
# The API's documents, answered by Envoy itself from files of the docs directory (gateway/docs):
# path -> file, content type. Files ending .gz are sent compressed (every browser accepts gzip),
# which keeps Swagger UI within a Kubernetes ConfigMap's 1 MiB.
DOCS: dict[str, tuple[str, str]] = {
    "/openapi.json": ("openapi.json", "application/json"),
    "/docs": ("index.html", "text/html; charset=utf-8"),
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js.gz", "text/javascript"),
    "/docs/swagger-ui.css": ("swagger-ui.css.gz", "text/css"),
}
# Envoy refuses a direct response body larger than this (its default is 4 KiB).
MAX_DOCS_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    # Further replicas at addresses of their own (the local stack). In Kubernetes the one name
    # of a headless Service resolves to every pod instead.
    also: tuple[Upstream, ...] = ()

    @classmethod
    def parse(cls, addresses: str) -> Upstream:
        """`HOST:PORT`, or several separated by commas: replicas of one service."""
        first, *others = (cls._parse_one(address) for address in addresses.split(","))
        return replace(first, also=tuple(others))

    @classmethod
    def _parse_one(cls, address: str) -> Upstream:
        host, _, port = address.strip().rpartition(":")
        return cls(host=host.strip("[]"), port=int(port))

    def replicas(self) -> tuple[Upstream, ...]:
        return (self, *self.also)


def _type(name: str) -> str:
    return f"type.googleapis.com/envoy.extensions.{name}"


def render(
    *,
    listen_host: str,
    port: int,
    admin_port: int,
    descriptor: str,
    upstreams: dict[str, Upstream],
    docs: str = "gateway/docs",
) -> dict[str, Any]:
    return {
        "admin": {"address": _socket("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [_listener(listen_host, port, descriptor, docs)],
            "clusters": [_cluster(name, upstreams[name]) for name in PUBLIC_SERVICES],
        },
        "overload_manager": _overload_manager(),
    }


# The one admin path the stats listener answers, and the cluster it reaches the admin through.
STATS_PATH = "/stats/prometheus"
ADMIN_CLUSTER = "admin"
CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"


def add_stats_listener(config: dict[str, Any], listen_host: str, stats_port: int) -> None:
    """Serve `GET /stats/prometheus` on `stats_port`, from the admin interface of `config`."""
    admin = config["admin"]["address"]["socket_address"]
    admin_endpoint = {"endpoint": {"address": _socket(admin["address"], admin["port_value"])}}
    resources = config["static_resources"]
    resources["listeners"].append(_stats_listener(listen_host, stats_port))
    resources["clusters"].append(
        {
            "name": ADMIN_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": ADMIN_CLUSTER,
                "endpoints": [{"lb_endpoints": [admin_endpoint]}],
            },
        }
    )


def _stats_listener(host: str, port: int) -> dict[str, Any]:
    routes = [
        {
            "match": {
                "path": STATS_PATH,
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "route": {"cluster": ADMIN_CLUSTER, "timeout": "10s"},
        },
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 404, "body": {"inline_string": "no such path"}},
        },
    ]
    manager = {
        "@type": _type("filters.network.http_connection_manager.v3.HttpConnectionManager"),
        "stat_prefix": "stats",
        "codec_type": "HTTP1",
        # The path is matched as normalized: no /stats/prometheus/../quitquitquit reaches the
        # admin interface.
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "route_config": {
            "name": "stats",
            "virtual_hosts": [{"name": "stats", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _type("filters.http.router.v3.Router")},
            }
        ],
    }
    return {
        "name": "stats",
        "address": _socket(host, port),
        "filter_chains": [{"filters": [{"name": CONNECTION_MANAGER, "typed_config": manager}]}],
    }


def forwarded_headers_bound() -> int:
    """The most header bytes, as gRPC counts them, that Envoy forwards for a request it accepts.

    Envoy counts names and values of every header, pseudo-headers included, against
    MAX_REQUEST_HEADERS_KB; gRPC counts each field 32 bytes more (HPACK's entry size). On the way
    Envoy adds x-envoy-original-path (the transcoder's copy of the path, itself within the
    limit), x-envoy-original-method, x-forwarded-for, x-forwarded-proto,
    x-envoy-external-address, x-request-id, x-envoy-expected-rq-timeout-ms, content-type and
    te; a kilobyte covers those besides the copied path.
    """
    added_fields = 10
    return (
        2 * MAX_REQUEST_HEADERS_KB * 1024 + (MAX_REQUEST_HEADERS_COUNT + added_fields) * 32 + 1024
    )


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _listener(host: str, port: int, descriptor: str, docs: str) -> dict[str, Any]:
    return {
        "name": "rest",
        "address": _socket(host, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": _connection_manager(descriptor, docs),
                    }
                ]
            }
        ],
    }


def _connection_manager(descriptor: str, docs: str) -> dict[str, Any]:
    return {
        "@type": _type("filters.network.http_connection_manager.v3.HttpConnectionManager"),
        "stat_prefix": "rest",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        "common_http_protocol_options": {
            "idle_timeout": f"{CONNECTION_IDLE_TIMEOUT_SECONDS}s",
            "max_headers_count": MAX_REQUEST_HEADERS_COUNT,
        },
        "http2_protocol_options": {
            "max_concurrent_streams": MAX_CONCURRENT_STREAMS,
        },
        # Each answers 408 (JSON, from the local reply mappers) and ends the request.
        "request_headers_timeout": f"{REQUEST_HEADERS_TIMEOUT_SECONDS}s",
        "request_timeout": f"{REQUEST_TIMEOUT_SECONDS}s",
        "stream_idle_timeout": f"{STREAM_IDLE_TIMEOUT_SECONDS}s",
        "access_log": [_access_log()],
        "route_config": _routes(docs),
        "local_reply_config": _json_local_replies(),
        "http_filters": [
            _health_check_filter(),
            _readiness_filter(),
            {
                "name": "envoy.filters.http.buffer",
                "typed_config": {
                    "@type": _type("filters.http.buffer.v3.Buffer"),
                    "max_request_bytes": MAX_REQUEST_BYTES,
                },
            },
            _transcoder_filter(descriptor),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _type("filters.http.router.v3.Router")},
            },
        ],
    }


def _access_log() -> dict[str, Any]:
    # One JSON line per request, without headers or bodies: tokens never reach the log.
    return {
        "name": "envoy.access_loggers.stderr",
        "typed_config": {
            "@type": _type("access_loggers.stream.v3.StderrAccessLog"),
            "log_format": {
                "json_format": {
                    "ts": "%START_TIME%",
                    "service": "gateway",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "status": "%RESPONSE_CODE%",
                    "grpc_status": "%GRPC_STATUS%",
                    "duration_ms": "%DURATION%",
                    "upstream": "%UPSTREAM_CLUSTER%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    # Empty unless tracing is on (add_tracing); the services log the same ids.
                    "trace_id": "%TRACE_ID%",
                }
            },
        },
    }


def _routes(docs: str) -> dict[str, Any]:
    route_timeout = f"{ROUTE_TIMEOUT_SECONDS}s"
    routes = []
    for cluster, services in PUBLIC_SERVICES.items():
        target = {"cluster": cluster, "timeout": route_timeout, "retry_policy": RETRY_POLICY}
        for service in services:
            match = {"prefix": f"/{service}/"}
            # The transcoder marks what it made from a REST request with the original path.
            rest = {"name": "x-envoy-original-path", "present_match": True}
            routes.append(
                {
                    "match": {**match, "headers": [rest]},
                    "route": target,
                    "request_headers_to_remove": list(GRPC_PROTOCOL_HEADERS),
                }
            )
            routes.append({"match": match, "route": target})
    routes += [_docs_route(path, docs) for path in DOCS]
    routes.append(
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 404, "body": {"inline_string": "no such path"}},
        }
    )
    return {
        "name": "public",
        "max_direct_response_body_size_bytes": MAX_DOCS_FILE_BYTES,
        "request_headers_to_remove": [SERVICE_METADATA_KEY],
        "virtual_hosts": [{"name": "api", "domains": ["*"], "routes": routes}],
    }


def _docs_route(path: str, docs: str) -> dict[str, Any]:
    file, _ = DOCS[path]
    headers = [{"header": {"key": "cache-control", "value": "no-cache"}}]
    if file.endswith(".gz"):
        headers.append({"header": {"key": "content-encoding", "value": "gzip"}})
    return {
        "match": {"path": path},
        "direct_response": {"status": 200, "body": {"filename": f"{docs}/{file}"}},
        "response_headers_to_add": headers,
        # Not a gRPC method: the transcoder would refuse it as one it does not know.
        "typed_per_filter_config": {
            "envoy.filters.http.grpc_json_transcoder": {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                "disabled": True,
            }
        },
    }


def _json_local_replies() -> dict[str, Any]:
    def json_body(fields: dict[str, Any]) -> dict[str, Any]:
        return {"json_format": fields, "content_type": "application/json"}

    # A document is a local reply too: it keeps its body and gets its content type.
    mappers = [
        {
            "filter": {"and_filter": {"filters": [_status_is(200), _path_is(path)]}},
            "body_format_override": {
                "text_format_source": {"inline_string": ENVOY_TEXT},
                "content_type": content_type,
            },
        }
        for path, (_, content_type) in DOCS.items()
    ]
    mappers += [
        {
            "filter": _status_is(status),
            "body_format_override": json_body({"code": code, "message": message}),
        }
        for status, (code, message) in LOCAL_REPLIES.items()
    ]
    # The health check filter answers /healthz itself: a local reply too.
    mappers.append(
        {"filter": _status_is(200), "body_format_override": json_body({"status": "serving"})}
    )
    return {"mappers": mappers, "body_format": json_body({"code": 13, "message": ENVOY_TEXT})}


def _status_is(status: int) -> dict[str, Any]:
    comparison = {
        "op": "EQ",
        "value": {"default_value": status, "runtime_key": f"local_reply.status_{status}"},
    }
    return {"status_code_filter": {"comparison": comparison}}


def _path_is(path: str) -> dict[str, Any]:
    # The route matches the path whatever its query string; so must the mapper.
    regex = {"safe_regex": {"regex": f"^{re.escape(path)}(\\?.*)?$"}}
    return {"header_filter": {"header": {"name": ":path", "string_match": regex}}}


def _health_check_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.health_check",
        "typed_config": {
            "@type": _type("filters.http.health_check.v3.HealthCheck"),
            "pass_through_mode": False,
            "headers": [{"name": ":path", "string_match": {"exact": "/healthz"}}],
            "cluster_min_healthy_percentages": {name: {"value": 100} for name in PUBLIC_SERVICES},
        },
    }


def _readiness_filter() -> dict[str, Any]:
    """`/readyz`: 200 while this Envoy takes requests, whatever the services behind it do (a
    route whose service is down answers its own 503); 503 once told to drain
    (`POST /healthcheck/fail` on the admin interface, the pod's preStop)."""
    return {
        "name": "envoy.filters.http.health_check.readiness",
        "typed_config": {
            "@type": _type("filters.http.health_check.v3.HealthCheck"),
            "pass_through_mode": False,
            "headers": [{"name": ":path", "string_match": {"exact": "/readyz"}}],
        },
    }


def _transcoder_filter(descriptor: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": _type("filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"),
            "proto_descriptor": descriptor,
            "services": [service for services in PUBLIC_SERVICES.values() for service in services],
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "preserve_proto_field_names": True,
            },
            "convert_grpc_status": True,
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
            },
        },
    }


def _cluster(name: str, upstream: Upstream) -> dict[str, Any]:
    return {
        "name": name,
        # Every address the name resolves to is a host, requests spread over them in turn.
        "type": "STRICT_DNS",
        "lb_policy": "ROUND_ROBIN",
        "dns_refresh_rate": f"{DNS_REFRESH_SECONDS}s",
        "connect_timeout": "2s",
        "dns_lookup_family": "V4_PREFERRED",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _type("upstreams.http.v3.HttpProtocolOptions"),
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_requests": MAX_UPSTREAM_REQUESTS,
                    "max_pending_requests": MAX_PENDING_UPSTREAM_REQUESTS,
                    # Publishes circuit_breakers.default.remaining_rq: how close a cluster is.
                    "track_remaining": True,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket(replica.host, replica.port)}}
                        for replica in upstream.replicas()
                    ]
                }
            ],
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "5s",
                "no_traffic_interval": "2s",
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": PUBLIC_SERVICES[name][0]},
            }
        ],
    }


def _overload_manager() -> dict[str, Any]:
    connections = "envoy.resource_monitors.global_downstream_max_connections"
    heap = "envoy.resource_monitors.fixed_heap"

    def at(threshold: float) -> list[dict[str, Any]]:
        return [{"name": heap, "threshold": {"value": threshold}}]

    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": connections,
                "typed_config": {
                    "@type": _type(
                        "resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
                    ),
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            },
            {
                "name": heap,
                "typed_config": {
                    "@type": _type("resource_monitors.fixed_heap.v3.FixedHeapConfig"),
                    "max_heap_size_bytes": MAX_HEAP_BYTES,
                },
            },
        ],
        # Every stream may buffer up to 8 MiB of body (the buffer filter), so a few clients
        # could fill the heap: past 85% Envoy resets the streams holding the most (those with
        # 1 MiB or more, first the largest), past 95% it takes no new request. Many small
        # streams left open fill it too: from 80% their idle timeouts shrink, to a tenth at 95%.
        "buffer_factory_config": {"minimum_account_to_track_power_of_two": 20},
        "actions": [
            {"name": "envoy.overload_actions.shrink_heap", "triggers": at(0.90)},
            {
                "name": "envoy.overload_actions.reduce_timeouts",
                "triggers": [
                    {
                        "name": heap,
                        "scaled": {"scaling_threshold": 0.80, "saturation_threshold": 0.95},
                    }
                ],
                "typed_config": {
                    "@type": "type.googleapis.com/"
                    "envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
                    "timer_scale_factors": [
                        {"timer": timer, "min_scale": {"value": 10}}
                        for timer in (
                            "HTTP_DOWNSTREAM_CONNECTION_IDLE",
                            "HTTP_DOWNSTREAM_STREAM_IDLE",
                        )
                    ],
                },
            },
            {
                "name": "envoy.overload_actions.reset_high_memory_stream",
                "triggers": [
                    {
                        "name": heap,
                        "scaled": {"scaling_threshold": 0.85, "saturation_threshold": 0.95},
                    }
                ],
            },
            {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": at(0.95)},
        ],
    }


# Envoy's spans go to the collector the services export to (marketsync.tracing), over OTLP/gRPC.
TRACE_COLLECTOR_CLUSTER = "otlp_collector"
GATEWAY_SERVICE_NAME = "marketsync-gateway"
OTLP_GRPC_PORT = 4317


def add_tracing(config: dict[str, Any], otlp_endpoint: str) -> None:
    """Trace every REST request: Envoy starts a trace (or continues the caller's `traceparent`),
    spans the call to the service and sends it `traceparent`, and exports its spans to the OTLP
    collector at `otlp_endpoint` (`http://host:port`, or `https://` for TLS)."""
    collector = urlsplit(otlp_endpoint)
    if collector.scheme not in ("http", "https") or not collector.hostname:
        raise ValueError(f"the OTLP endpoint is not http(s)://host[:port]: {otlp_endpoint!r}")
    resources = config["static_resources"]
    resources["clusters"].append(
        _collector_cluster(
            Upstream(collector.hostname, collector.port or OTLP_GRPC_PORT),
            tls=collector.scheme == "https",
        )
    )
    for listener in resources["listeners"]:
        if listener["name"] == "rest":
            for chain in listener["filter_chains"]:
                for network_filter in chain["filters"]:
                    network_filter["typed_config"]["tracing"] = _tracing()


def _tracing() -> dict[str, Any]:
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {
                    "envoy_grpc": {"cluster_name": TRACE_COLLECTOR_CLUSTER},
                    "timeout": "2s",
                },
                "service_name": GATEWAY_SERVICE_NAME,
            },
        },
        # A client span for the call to the service besides the request's own span.
        "spawn_upstream_span": True,
    }


def _collector_cluster(collector: Upstream, *, tls: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": TRACE_COLLECTOR_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "dns_lookup_family": "V4_PREFERRED",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _type("upstreams.http.v3.HttpProtocolOptions"),
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": TRACE_COLLECTOR_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket(collector.host, collector.port)}}
                    ]
                }
            ],
        },
    }
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": _type("transport_sockets.tls.v3.UpstreamTlsContext"),
                "sni": collector.host,
            },
        }
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--listen-host", default="0.0.0.0")  # noqa: S104 - Envoy is the public edge
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--stats-port", type=int, help="serve GET /stats/prometheus on this port")
    parser.add_argument("--descriptor", default="gateway/descriptor.pb")
    parser.add_argument("--docs", default="gateway/docs", help="directory of the API documents")
    for name in PUBLIC_SERVICES:
        parser.add_argument(f"--{name}", required=True, type=Upstream.parse, metavar="HOST:PORT")
    parser.add_argument(
        "--otlp-endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        help="trace to this OTLP/gRPC collector (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    args = parser.parse_args()
    config = render(
        listen_host=args.listen_host,
        port=args.port,
        admin_port=args.admin_port,
        descriptor=args.descriptor,
        docs=args.docs,
        upstreams={name: getattr(args, name) for name in PUBLIC_SERVICES},
    )
    if args.otlp_endpoint:
        add_tracing(config, args.otlp_endpoint)
    if args.stats_port is not None:
        add_stats_listener(config, args.listen_host, args.stats_port)
    args.output.write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    main()
