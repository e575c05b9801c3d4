"""The monitoring component: a PodMonitor for every workload's metrics port, alert rules that
pass promtool's checks and their unit tests, and the Grafana dashboard, all on the metrics the
suite exports.

promtool comes from Debian's `prometheus` package: where it is not on PATH, the package is
downloaded and unpacked into a cache directory (no installation); only the promtool tests skip,
saying why, where that cannot be done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import K8S, render
from tests.deploy.kustomize_subset import Manifest

MONITORING = K8S / "components" / "monitoring"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yaml"))
DASHBOARD = MONITORING / "dashboards" / "marketsync.json"
PROMTOOL_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "marketsync" / "promtool"
)
APT_TIMEOUT_SECONDS = 600
# Every metric the suite exports that the rules and the dashboard may use (marketsync.metrics,
# services/*/metrics.py, Envoy's stats listener), and the rules' own recorded series.
KNOWN_METRICS = {
    "marketsync_grpc_server_handled_total",
    "marketsync_grpc_server_handling_seconds_bucket",
    "marketsync_grpc_client_handled_total",
    "marketsync_sync_runs_total",
    "marketsync_sync_items_total",
    "marketsync_sync_queue_depth",
    "marketsync_sync_running",
    "marketsync_sync_oldest_queued_seconds",
    "marketsync_sync_oldest_running_seconds",
    "marketsync_sync_organizations_overdue",
    "marketsync_marketplace_requests_total",
    "marketsync_marketplace_pacing_wait_seconds_total",
    "marketsync_sync_duration_seconds_bucket",
    "marketsync_dynamodb_requests_total",
    "marketsync_dynamodb_capacity_units_total",
    "marketsync_auth_logins_total",
    "marketsync_auth_lockouts_total",
    "marketsync_auth_password_hash_seconds_bucket",
    "marketsync_auth_db_pool_connections",
    "envoy_http_downstream_rq_xx",
    "envoy_http_downstream_rq_total",
    "marketsync:dynamodb_capacity_units_budget_per_day",
}
METRIC_NAME = re.compile(r"\b(?:marketsync[:_]|envoy_)[a-z0-9_:]+")
# Label matchers and grouping clauses name labels, not metrics.
LABEL_LISTS = re.compile(r"\{[^}]*\}|\b(?:by|on|without|ignoring)\s*\([^)]*\)")


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.fixture(scope="module")
def monitored() -> list[Manifest]:
    return render(("monitoring",))


def rules_spec() -> dict[str, Any]:
    (rule,) = yaml.safe_load_all((MONITORING / "prometheus-rules.yaml").read_text())
    spec: dict[str, Any] = rule["spec"]
    return spec


def alerts() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in rules_spec()["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_deployment_is_scraped_on_its_metrics_port(monitored: list[Manifest]) -> None:
    deployments = of_kind(monitored, "Deployment")
    monitors = of_kind(monitored, "PodMonitor")
    assert set(monitors) == set(deployments)
    for name, monitor in monitors.items():
        pod = deployments[name]["spec"]["template"]
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items(), name
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {port["name"] for c in pod["spec"]["containers"] for port in c.get("ports", [])}
        assert endpoint["port"] == "metrics" and "metrics" in ports, name
        # Envoy serves its stats on its stats listener's own path.
        assert endpoint["path"] == ("/stats/prometheus" if name == "gateway" else "/metrics")


def test_the_dashboard_ships_as_a_config_map_grafana_loads(monitored: list[Manifest]) -> None:
    config_map = of_kind(monitored, "ConfigMap")["marketsync-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {"marketsync.json": DASHBOARD.read_text()}
    dashboard = json.loads(DASHBOARD.read_text())
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert graphs and all(panel["targets"] for panel in graphs)
    assert {panel["datasource"]["uid"] for panel in graphs} == {"${datasource}"}


def test_rules_and_dashboard_use_only_metrics_the_suite_exports() -> None:
    expressions = [rule["expr"] for group in rules_spec()["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    used = {name for expr in expressions for name in METRIC_NAME.findall(LABEL_LISTS.sub("", expr))}
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS


def test_every_alert_has_a_unit_test_and_says_what_to_do() -> None:
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        # A test that expects the alert to fire, not only to stay quiet.
        if case.get("exp_alerts")
    }
    assert tested == set(alerts())
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name


def _unpacked_promtool() -> Path:
    return PROMTOOL_CACHE / "root" / "usr" / "bin" / "promtool"


def _unpack_promtool_from_debian() -> str:
    """Download Debian's prometheus package and unpack it into the cache; answers why not."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return "apt-get and dpkg are not available"
    PROMTOOL_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PROMTOOL_CACHE) as download:

        def apt_get(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["apt-get", "-q", *args],
                cwd=download, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS,
            )  # fmt: skip

        fetched = apt_get("download", "prometheus")
        if fetched.returncode != 0:
            # No package lists yet (a fresh machine); updating them needs root.
            apt_get("update")
            fetched = apt_get("download", "prometheus")
        if fetched.returncode != 0:
            return f"apt-get download prometheus failed: {fetched.stderr.strip()[-300:]}"
        (package,) = Path(download).glob("prometheus_*.deb")
        subprocess.run(
            ["dpkg", "-x", str(package), str(PROMTOOL_CACHE / "root")],
            check=True, timeout=APT_TIMEOUT_SECONDS,
        )  # fmt: skip
    return "" if _unpacked_promtool().exists() else "the prometheus package holds no promtool"


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if not _unpacked_promtool().exists():
        reason = _unpack_promtool_from_debian()
        if reason:
            pytest.skip(f"promtool (Debian package prometheus) could not be had: {reason}")
    return str(_unpacked_promtool())


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The PrometheusRule's groups as the plain rule file promtool reads, beside the tests."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules_spec()))
    for path in RULE_TESTS:
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_promtool_accepts_the_rules(promtool: str, rules_dir: Path) -> None:
    checked = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=rules_dir, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("unit_tests", RULE_TESTS, ids=lambda path: path.stem)
def test_the_rules_pass_their_promtool_unit_tests(
    promtool: str, rules_dir: Path, unit_tests: Path
) -> None:
    tested = subprocess.run(
        [promtool, "test", "rules", unit_tests.name], cwd=rules_dir, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
