"""Envoy's configuration, rendered from one definition for the local stack and Kubernetes.

Envoy transcodes REST/JSON to gRPC for the public services only (routes match the gRPC path the
transcoder produced, so internal services are never reachable), answers every error it makes
itself as JSON with `code` and `message` like the transcoded gRPC errors, strips the service
credential header from outside requests, and answers `/healthz` from the clusters' gRPC health.

Usage: python -m gateway.envoy_config OUTPUT.json --port 8080 --admin-port 9901
       --descriptor gateway/descriptor.pb --auth HOST:PORT --catalog HOST:PORT --sync HOST:PORT
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketsync.service_auth import SERVICE_METADATA_KEY

# Cluster name -> the public gRPC services it serves; the first is the one health-checked.
PUBLIC_SERVICES: dict[str, tuple[str, ...]] = {
    "auth": ("marketsync.auth.v1.AuthService", "marketsync.auth.v1.CredentialsService"),
    "catalog": ("marketsync.catalog.v1.CatalogService",),
    "sync": ("marketsync.sync.v1.SyncService",),
}
# Envoy's own replies by HTTP status: the gRPC code they carry (as the transcoder's errors do)
# and their message: Envoy's text where it says something, ours where it is empty or terse.
ENVOY_TEXT = "%LOCAL_REPLY_BODY%"
LOCAL_REPLIES: dict[int, tuple[int, str]] = {
    400: (3, ENVOY_TEXT),
    404: (5, ENVOY_TEXT),
    408: (4, "the request took too long to arrive"),
    413: (3, "the request body is larger than 8 MiB"),
    431: (3, "the request headers are larger than 12 KiB"),
    503: (14, "a service is unavailable; try again shortly"),
}
# Below gRPC's 16 KiB metadata limit, so Envoy refuses oversized headers itself (431, JSON).
MAX_REQUEST_HEADERS_KB = 12
# A REST client has no business setting the gRPC protocol headers Envoy would pass on: a
# `grpc-timeout: 1n` or a bogus `grpc-encoding` makes the service fail the call.
GRPC_PROTOCOL_HEADERS = (
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-previous-rpc-attempts",
)
MAX_REQUEST_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> Upstream:
        host, _, port = address.rpartition(":")
        return cls(host=host.strip("[]"), port=int(port))


def _type(name: str) -> str:
    return f"type.googleapis.com/envoy.extensions.{name}"


def render(
    *,
    listen_host: str,
    port: int,
    admin_port: int,
    descriptor: str,
    upstreams: dict[str, Upstream],
) -> dict[str, Any]:
    return {
        "admin": {"address": _socket("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [_listener(listen_host, port, descriptor)],
            "clusters": [_cluster(name, upstreams[name]) for name in PUBLIC_SERVICES],
        },
    }


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _listener(host: str, port: int, descriptor: str) -> dict[str, Any]:
    return {
        "name": "rest",
        "address": _socket(host, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": _connection_manager(descriptor),
                    }
                ]
            }
        ],
    }


def _connection_manager(descriptor: str) -> dict[str, Any]:
    return {
        "@type": _type("filters.network.http_connection_manager.v3.HttpConnectionManager"),
        "stat_prefix": "rest",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        "access_log": [_access_log()],
        "route_config": _routes(),
        "local_reply_config": _json_local_replies(),
        "http_filters": [
            _health_check_filter(),
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
                }
            },
        },
    }


def _routes() -> dict[str, Any]:
    routes = []
    for cluster, services in PUBLIC_SERVICES.items():
        for service in services:
            match = {"prefix": f"/{service}/"}
            # The transcoder marks what it made from a REST request with the original path.
            rest = {"name": "x-envoy-original-path", "present_match": True}
            routes.append(
                {
                    "match": {**match, "headers": [rest]},
                    "route": {"cluster": cluster, "timeout": "60s"},
                    "request_headers_to_remove": list(GRPC_PROTOCOL_HEADERS),
                }
            )
            routes.append({"match": match, "route": {"cluster": cluster, "timeout": "60s"}})
    routes.append(
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 404, "body": {"inline_string": "no such path"}},
        }
    )
    return {
        "name": "public",
        "request_headers_to_remove": [SERVICE_METADATA_KEY],
        "virtual_hosts": [{"name": "api", "domains": ["*"], "routes": routes}],
    }


def _json_local_replies() -> dict[str, Any]:
    def json_body(fields: dict[str, Any]) -> dict[str, Any]:
        return {"json_format": fields, "content_type": "application/json"}

    mappers = [
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
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket(upstream.host, upstream.port)}}]}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--listen-host", default="0.0.0.0")  # noqa: S104 - Envoy is the public edge
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--descriptor", default="gateway/descriptor.pb")
    for name in PUBLIC_SERVICES:
        parser.add_argument(f"--{name}", required=True, type=Upstream.parse, metavar="HOST:PORT")
    args = parser.parse_args()
    config = render(
        listen_host=args.listen_host,
        port=args.port,
        admin_port=args.admin_port,
        descriptor=args.descriptor,
        upstreams={name: getattr(args, name) for name in PUBLIC_SERVICES},
    )
    args.output.write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    main()
