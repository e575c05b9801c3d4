"""The gateway files committed under deploy/k8s/base/gateway/ match a fresh rendering."""

from __future__ import annotations

import json

from gateway.envoy_config import (
    ADMIN_CLUSTER,
    PUBLIC_SERVICES,
    STATS_PATH,
    Upstream,
    add_stats_listener,
    render,
)
from tests.deploy.conftest import K8S, REPO

STALE = "stale: run deploy/k8s/render-gateway.sh and commit the result"
ENVOY_STATS_PORT = 9902
UPSTREAMS = {"auth": "auth:50051", "catalog": "catalog:50052", "sync": "sync:50053"}


def test_envoy_config_is_freshly_rendered() -> None:
    fresh = render(
        listen_host="0.0.0.0",
        port=8080,
        admin_port=9901,
        descriptor="/etc/envoy/descriptor.pb",
        docs="/etc/envoy-docs",
        upstreams={name: Upstream.parse(UPSTREAMS[name]) for name in PUBLIC_SERVICES},
    )
    add_stats_listener(fresh, "0.0.0.0", ENVOY_STATS_PORT)
    committed = (K8S / "base" / "gateway" / "envoy.json").read_text()
    assert committed == json.dumps(fresh, indent=2) + "\n", f"envoy.json is {STALE}"


def test_descriptor_set_is_the_current_one() -> None:
    committed = (K8S / "base" / "gateway" / "descriptor.pb").read_bytes()
    assert committed == (REPO / "gateway" / "descriptor.pb").read_bytes(), (
        f"descriptor.pb is {STALE}"
    )


def test_api_documents_are_the_current_ones() -> None:
    committed = K8S / "base" / "gateway-docs"
    current = REPO / "gateway" / "docs"
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in current.iterdir())
    stale = [
        p.name for p in current.iterdir() if p.read_bytes() != (committed / p.name).read_bytes()
    ]
    assert not stale, f"{stale} {STALE}"


def test_admin_interface_stays_on_loopback() -> None:
    config = json.loads((K8S / "base" / "gateway" / "envoy.json").read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_the_stats_listener_passes_only_get_stats_prometheus_to_the_admin() -> None:
    config = json.loads((K8S / "base" / "gateway" / "envoy.json").read_text())
    (stats,) = [
        listener
        for listener in config["static_resources"]["listeners"]
        if listener["name"] == "stats"
    ]
    assert stats["address"]["socket_address"]["port_value"] == ENVOY_STATS_PORT
    manager = stats["filter_chains"][0]["filters"][0]["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    to_admin = [route for route in host["routes"] if "route" in route]
    assert [route["match"]["path"] for route in to_admin] == [STATS_PATH]
    assert to_admin[0]["route"]["cluster"] == ADMIN_CLUSTER
    assert to_admin[0]["match"]["headers"] == [
        {"name": ":method", "string_match": {"exact": "GET"}}
    ]
    assert manager["normalize_path"] is True
