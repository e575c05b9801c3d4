"""The gateway pod's preStop, run as the kubelet runs it against a real Envoy started with the
pod's own arguments: /readyz turns 503 (the pod leaves the Service's endpoints) while the
listener still answers, telling each client to close its connection (issue 10)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev.stack import free_port
from gateway.envoy_config import PUBLIC_SERVICES, Upstream, render
from tests.deploy.conftest import render as render_manifests

REPO = Path(__file__).resolve().parents[2]
ENVOY = Path(sys.executable).parent / "envoy"


def _gateway_container() -> dict[str, Any]:
    (deployment,) = [
        m
        for m in render_manifests(())
        if (m["kind"], m["metadata"]["name"]) == ("Deployment", "gateway")
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


class LocalGateway:
    def __init__(self, tmp_path: Path) -> None:
        self.port, self.admin_port = free_port(), free_port()
        nowhere = Upstream("127.0.0.1", free_port())
        config = render(
            listen_host="127.0.0.1",
            port=self.port,
            admin_port=self.admin_port,
            descriptor=str(REPO / "gateway" / "descriptor.pb"),
            upstreams=dict.fromkeys(PUBLIC_SERVICES, nowhere),
        )
        path = tmp_path / "envoy.json"
        path.write_text(json.dumps(config))
        self.url = f"http://127.0.0.1:{self.port}"
        # The pod's arguments, but this config and one worker.
        args = _gateway_container()["args"]
        pod_only = {"--config-path", "--concurrency"}
        kept = [
            arg
            for index, arg in enumerate(args)
            if arg not in pod_only and (index == 0 or args[index - 1] not in pod_only)
        ]
        self.process = subprocess.Popen(
            [str(ENVOY), "-c", str(path), "--concurrency", "1", *kept],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "Envoy exited"
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Envoy did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LocalGateway]:
    running = LocalGateway(tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_the_pre_stop_hook_fails_readiness_and_drains_the_listener(gateway: LocalGateway) -> None:
    *shell, script = _gateway_container()["lifecycle"]["preStop"]["exec"]["command"]
    # The same script, at this Envoy's admin port and without the final wait for the kubelet.
    local = re.sub(r"sleep \d+$", "sleep 0", script).replace(
        "/dev/tcp/127.0.0.1/9901", f"/dev/tcp/127.0.0.1/{gateway.admin_port}"
    )
    subprocess.run([*shell, local], check=True, timeout=30)

    with httpx.Client() as client:
        ready = client.get(f"{gateway.url}/readyz")
    assert ready.status_code == 503
    assert ready.json()["code"] == 14
    # Still listening during the drain, but every answer asks the client to go elsewhere.
    assert ready.headers["connection"] == "close"
