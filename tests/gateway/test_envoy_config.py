"""Every rendered Envoy configuration passes `envoy --mode validate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.envoy_config import PUBLIC_SERVICES, Upstream, render

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
