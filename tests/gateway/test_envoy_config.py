"""Every rendered Envoy configuration passes `envoy --mode validate`, and keeps the limits that
stop one client from using up what every client shares (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.envoy_config import (
    MAX_CONCURRENT_STREAMS,
    MAX_HEAP_BYTES,
    MAX_REQUEST_HEADERS_COUNT,
    MAX_REQUEST_HEADERS_KB,
    PUBLIC_SERVICES,
    Upstream,
    forwarded_headers_bound,
    render,
)
from marketsync.server import ABSOLUTE_MAX_METADATA_BYTES, MAX_METADATA_BYTES

REPO = Path(__file__).resolve().parents[2]
ENVOY = Path(sys.executable).parent / "envoy"

RENDERINGS = {
    "local": {
        "listen_host": "127.0.0.1",
        "upstreams": {n: Upstream("127.0.0.1", 50051) for n in PUBLIC_SERVICES},
    },
    "kubernetes": {
        "listen_host": "0.0.0.0",
        "upstreams": {n: Upstream(n, 50051) for n in PUBLIC_SERVICES},
    },
}


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_rendered_config_validates(rendering: str, tmp_path: Path) -> None:
    options = RENDERINGS[rendering]
    config = render(
        port=8080,
        admin_port=9901,
        descriptor=str(REPO / "gateway" / "descriptor.pb"),
        **options,  # type: ignore[arg-type]
    )
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_internal_services_are_never_routed() -> None:
    config = render(
        listen_host="127.0.0.1",
        port=8080,
        admin_port=9901,
        descriptor="descriptor.pb",
        upstreams={n: Upstream("127.0.0.1", 1) for n in PUBLIC_SERVICES},
    )
    text = json.dumps(config)
    assert "InternalService" not in text


def _local_config() -> dict[str, Any]:
    return render(
        port=8080,
        admin_port=9901,
        descriptor="descriptor.pb",
        **RENDERINGS["local"],  # type: ignore[arg-type]
    )


def _connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (manager,) = chain["filters"]
    return dict(manager["typed_config"])


def test_services_take_every_header_envoy_forwards() -> None:
    # Otherwise gRPC, not Envoy, refuses large headers: a random 429 listing their names.
    manager = _connection_manager(_local_config())
    assert manager["max_request_headers_kb"] == MAX_REQUEST_HEADERS_KB
    assert manager["common_http_protocol_options"]["max_headers_count"] == (
        MAX_REQUEST_HEADERS_COUNT
    )
    assert forwarded_headers_bound() <= MAX_METADATA_BYTES <= ABSOLUTE_MAX_METADATA_BYTES


def test_envoys_own_refusals_are_json_and_name_no_header() -> None:
    mappers = _connection_manager(_local_config())["local_reply_config"]["mappers"]
    by_status = {
        mapper["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]: mapper
        for mapper in mappers
        if "status_code_filter" in mapper["filter"]  # not the documents' mappers
    }
    for status in (408, 431, 503):
        body = by_status[status]["body_format_override"]
        assert body["content_type"] == "application/json"
        assert set(body["json_format"]) == {"code", "message"}
        assert "%" not in body["json_format"]["message"], "Envoy's own text may name a header"


def test_one_client_cannot_take_what_every_client_shares() -> None:
    config = _local_config()
    manager = _connection_manager(config)
    assert manager["http2_protocol_options"]["max_concurrent_streams"] <= 100
    for timeout in ("request_headers_timeout", "request_timeout", "stream_idle_timeout"):
        assert manager[timeout].endswith("s"), timeout
    assert "idle_timeout" in manager["common_http_protocol_options"]
    for cluster in config["static_resources"]["clusters"]:
        (thresholds,) = cluster["circuit_breakers"]["thresholds"]
        assert thresholds["max_requests"] > MAX_CONCURRENT_STREAMS, cluster["name"]
        assert thresholds["max_pending_requests"] > 0, cluster["name"]
    monitors = {m["name"] for m in config["overload_manager"]["resource_monitors"]}
    assert monitors == {
        "envoy.resource_monitors.global_downstream_max_connections",
        "envoy.resource_monitors.fixed_heap",
    }


def test_envoys_heap_budget_fits_the_gateway_container() -> None:
    manifests = yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "gateway.yaml").read_text())
    (deployment,) = [m for m in manifests if m and m["kind"] == "Deployment"]
    (envoy,) = deployment["spec"]["template"]["spec"]["containers"]
    limit = envoy["resources"]["limits"]["memory"]
    units = {"Mi": 2**20, "Gi": 2**30}
    limit_bytes = int(limit[:-2]) * units[limit[-2:]]
    # The rest of the limit is Envoy's binary, thread stacks and allocator slack.
    headroom = limit_bytes - MAX_HEAP_BYTES
    assert headroom >= 0.2 * limit_bytes
