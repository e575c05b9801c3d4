"""Envoy's tracer, rendered when an OTLP endpoint is given: the configuration still validates,
for a plain and a TLS collector, and a malformed endpoint is refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.envoy_config import PUBLIC_SERVICES, Upstream, add_tracing, render

REPO = Path(__file__).resolve().parents[2]
ENVOY = Path(sys.executable).parent / "envoy"


def rendered() -> dict[str, Any]:
    return render(
        listen_host="127.0.0.1",
        port=8080,
        admin_port=9901,
        descriptor=str(REPO / "gateway" / "descriptor.pb"),
        upstreams={name: Upstream(name, 50051) for name in PUBLIC_SERVICES},
    )


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4317", "https://otel.example.com"])
def test_a_traced_config_validates(endpoint: str, tmp_path: Path) -> None:
    config = rendered()
    add_tracing(config, endpoint)
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (rest,) = [item for item in config["static_resources"]["listeners"] if item["name"] == "rest"]
    manager = rest["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"


@pytest.mark.parametrize("endpoint", ["otel-collector:4317", "grpc://otel:4317", "http://"])
def test_an_endpoint_that_is_not_a_url_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="OTLP endpoint"):
        add_tracing(rendered(), endpoint)
