"""Rollouts lose no request, every replica gets load, and a release runs in order (issue 10),
read from every render of deploy/k8s."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway.envoy_config import DNS_REFRESH_SECONDS
from tests.deploy.conftest import K8S
from tests.deploy.kustomize_subset import Manifest
from tests.deploy.test_manifests import GRPC_SERVICES, env_of, of_kind

# Envoy's active health checks of the services (gateway.envoy_config): a draining replica is
# seen NOT_SERVING within one interval.
ENVOY_HEALTH_CHECK_SECONDS = 5
POD_IDENTITY_AGENT = "169.254.170.23/32"
HOOK = "argocd.argoproj.io/hook"


def _pod_spec(manifests: list[Manifest], name: str) -> dict[str, Any]:
    return dict(of_kind(manifests, "Deployment")[name]["spec"]["template"]["spec"])


def test_grpc_services_are_headless_and_say_grpc(manifests: list[Manifest]) -> None:
    services = of_kind(manifests, "Service")
    for name, (_, port) in GRPC_SERVICES.items():
        spec = services[name]["spec"]
        # Headless: DNS answers every ready pod, so Envoy and the clients balance per call.
        assert spec["clusterIP"] == "None", name
        (grpc,) = [p for p in spec["ports"] if p["name"] == "grpc"]
        assert (grpc["port"], grpc["appProtocol"]) == (port, "grpc"), name
    assert "clusterIP" not in services["gateway"]["spec"]


def test_grpc_services_drain_and_stop_within_their_grace(manifests: list[Manifest]) -> None:
    for name, (_, port) in GRPC_SERVICES.items():
        spec = _pod_spec(manifests, name)
        (container,) = spec["containers"]
        env = env_of(container)
        drain = float(env["SHUTDOWN_DRAIN_SECONDS"]["value"])
        grace = float(env["SHUTDOWN_GRACE_SECONDS"]["value"])
        # Envoy sees NOT_SERVING by its health check and drops the address at its next DNS
        # refresh, with room to spare.
        assert drain > ENVOY_HEALTH_CHECK_SECONDS + DNS_REFRESH_SECONDS, name
        assert spec["terminationGracePeriodSeconds"] > drain + grace, name
        assert container["startupProbe"]["grpc"] == {"port": port}, name


def test_gateway_drains_before_it_stops(manifests: list[Manifest]) -> None:
    spec = _pod_spec(manifests, "gateway")
    (envoy,) = spec["containers"]
    args = envoy["args"]
    drain_time = int(args[args.index("--drain-time-s") + 1])
    assert args[args.index("--drain-strategy") + 1] == "immediate"
    *shell, script = envoy["lifecycle"]["preStop"]["exec"]["command"]
    assert shell == ["/bin/bash", "-c"]
    # Fail /readyz first (the pod leaves the endpoints), then drain the listeners.
    assert script.index("/healthcheck/fail") < script.index("/drain_listeners?graceful")
    config = json.loads(of_kind(manifests, "ConfigMap")["gateway-config"]["data"]["envoy.json"])
    admin_port = config["admin"]["address"]["socket_address"]["port_value"]
    assert f"/dev/tcp/127.0.0.1/{admin_port}" in script
    found = re.search(r"sleep (\d+)$", script)
    assert found, script
    sleep = int(found[1])
    assert sleep >= drain_time
    assert spec["terminationGracePeriodSeconds"] > sleep


def test_envoy_runs_a_worker_per_cpu_of_its_limit(manifests: list[Manifest]) -> None:
    (envoy,) = _pod_spec(manifests, "gateway")["containers"]
    args = envoy["args"]
    assert args[args.index("--concurrency") + 1] == "$(ENVOY_CONCURRENCY)"
    source = env_of(envoy)["ENVOY_CONCURRENCY"]["valueFrom"]["resourceFieldRef"]
    assert source == {"containerName": "envoy", "resource": "limits.cpu", "divisor": "1"}


@pytest.mark.parametrize("components", [("high-availability",)], ids=["high-availability"])
def test_every_deployment_autoscales_with_behavior_and_budgets_evict_unready_pods(
    manifests: list[Manifest],
) -> None:
    autoscalers = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]
        for hpa in of_kind(manifests, "HorizontalPodAutoscaler").values()
    }
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for name in of_kind(manifests, "Deployment"):
        spec = autoscalers[name]
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"], name
        assert set(spec["behavior"]) == {"scaleUp", "scaleDown"}, name
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300, name
        # A crash-looping pod must not block node drains while the budget is spent.
        assert budgets[name]["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name


def test_release_jobs_run_first_keep_their_logs_and_have_their_own_accounts(
    manifests: list[Manifest],
) -> None:
    accounts = of_kind(manifests, "ServiceAccount")
    jobs = of_kind(manifests, "Job")
    assert set(jobs) == {"auth-migrations", "catalog-tables"}
    for name, job in jobs.items():
        # Finished Jobs stay (a failed one with its pods' logs) until the next release.
        assert "ttlSecondsAfterFinished" not in job["spec"], name
        annotations = job["metadata"]["annotations"]
        assert annotations[HOOK] == "PreSync", name
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert annotations["kustomize.toolkit.fluxcd.io/force"] == "Enabled", name
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        assert account == name
        # Created before the Job on a first Argo CD sync.
        assert accounts[account]["metadata"]["annotations"][HOOK] == "PreSync"
    long_running = {
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        for deployment in of_kind(manifests, "Deployment").values()
    }
    # Catalog's pods do not carry what creates the table.
    assert not long_running & set(jobs)


def _egress_to(manifests: list[Manifest], cidr: str) -> set[tuple[str, int]]:
    """(pod name label, port) of every egress rule to the given address block."""
    return {
        (policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
        for policy in of_kind(manifests, "NetworkPolicy").values()
        for rule in policy["spec"].get("egress", [])
        if any(peer.get("ipBlock", {}).get("cidr") == cidr for peer in rule.get("to", []))
        for port in rule["ports"]
    }


@pytest.mark.parametrize(
    "components",
    [("network-policies",), ("network-policies", "aws-pod-identity")],
    ids=["network-policies", "network-policies+aws-pod-identity"],
)
def test_the_pod_identity_agent_is_reachable_with_its_component_only(
    manifests: list[Manifest], components: tuple[str, ...]
) -> None:
    expected = (
        {("catalog", 80), ("catalog-tables", 80)} if "aws-pod-identity" in components else set()
    )
    assert _egress_to(manifests, POD_IDENTITY_AGENT) == expected


def test_the_readme_releases_the_jobs_before_the_deployments() -> None:
    readme = (K8S / "README.md").read_text()
    commands = re.findall(r"^kubectl .*$", readme, flags=re.MULTILINE)
    jobs = next(i for i, c in enumerate(commands) if "apply" in c and "jobs" in c)
    waited = next(i for i, c in enumerate(commands) if "wait --for=condition=complete" in c)
    app = next(i for i, c in enumerate(commands) if "apply" in c and "jobs" not in c and "-k" in c)
    assert jobs < waited < app, commands


def test_envoy_balances_each_request_over_every_pod_of_a_headless_service(
    manifests: list[Manifest],
) -> None:
    config = json.loads(of_kind(manifests, "ConfigMap")["gateway-config"]["data"]["envoy.json"])
    services = of_kind(manifests, "Service")
    clusters = {
        cluster["name"]: cluster
        for cluster in config["static_resources"]["clusters"]
        if cluster["name"] in GRPC_SERVICES
    }
    assert set(clusters) == set(GRPC_SERVICES)
    for name, cluster in clusters.items():
        # STRICT_DNS makes every address the name resolves to a host of its own.
        assert (cluster["type"], cluster["lb_policy"]) == ("STRICT_DNS", "ROUND_ROBIN"), name
        (locality,) = cluster["load_assignment"]["endpoints"]
        (endpoint,) = locality["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        assert address["address"] == name
        assert services[name]["spec"]["clusterIP"] == "None", name
