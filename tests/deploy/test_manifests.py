"""What a platform team relies on in every render of deploy/k8s (base and jobs, with each subset
of the components): hardened pods, probes, resources, secrets where they belong, Services and
network policies that select real pods."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import COMPONENT_NAMES, K8S, ROOTS, render
from tests.deploy.kustomize_subset import Manifest, build

GRPC_SERVICES = {
    "auth": ("marketsync.auth.v1.AuthService", 50051),
    "catalog": ("marketsync.catalog.v1.CatalogService", 50052),
    "sync": ("marketsync.sync.v1.SyncService", 50053),
}
# Where Prometheus scrapes each service (METRICS_PORT) and Envoy's stats listener.
METRICS_PORT = 9090
ENVOY_STATS_PORT = 9902
# Pods (by app.kubernetes.io/name) allowed to read each key of each Secret: every workload has
# a Secret of its own, and only the private keys of the service it runs.
SECRET_READERS = {
    ("marketsync-auth", "JWT_PRIVATE_KEY"): {"auth"},
    ("marketsync-auth", "CREDENTIALS_ENCRYPTION_KEY"): {"auth"},
    ("marketsync-auth", "CRED_DATABASE_URL"): {"auth", "auth-migrations"},
    ("marketsync-catalog", "SERVICE_PRIVATE_KEY"): {"catalog"},
    ("marketsync-sync", "SERVICE_PRIVATE_KEY"): {"sync"},
    ("marketsync-scheduler", "SERVICE_PRIVATE_KEY"): {"sync-scheduler"},
}
# With the aws-static-keys component, the AWS keys each pod reads from its own Secret.
STATIC_AWS_KEY_READERS = {
    (secret, variable): {reader}
    for reader, secret in (
        ("catalog", "marketsync-catalog"),
        ("catalog-tables", "marketsync-catalog-tables"),
    )
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
}
# The Secret each pod may read, if any: its own workload's.
OWN_SECRET = {
    "auth": "marketsync-auth",
    "auth-migrations": "marketsync-auth",
    "catalog": "marketsync-catalog",
    "catalog-tables": "marketsync-catalog-tables",
    "sync": "marketsync-sync",
    "sync-scheduler": "marketsync-scheduler",
}
PUBLIC_KEYS = "marketsync-public-keys"
# The public keys each pod verifies with: user tokens (every service), service credentials
# (the services that serve internal RPCs).
PUBLIC_KEY_READERS = {
    "JWT_PUBLIC_KEYS": {"auth", "catalog", "sync"},
    "SERVICE_PUBLIC_KEYS": {"auth", "catalog"},
}
APP = "app.kubernetes.io/name"
# What a sync pod takes idle and per sync it runs (a large Walmart catalogue being joined), MiB.
SYNC_IDLE_MIB = 100
SYNC_EACH_MIB = 10
QUANTITY_MIB = {"Mi": 1, "Gi": 1024}


def pod_templates(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, pod template) of every Deployment, Job and CronJob."""
    for manifest in manifests:
        spec = manifest.get("spec", {})
        if manifest["kind"] in ("Deployment", "Job"):
            yield manifest["metadata"]["name"], spec["template"]
        elif manifest["kind"] == "CronJob":
            yield manifest["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def mebibytes(quantity: str) -> float:
    for suffix, factor in QUANTITY_MIB.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    raise AssertionError(f"memory quantities here are in Mi or Gi: {quantity}")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        raise AssertionError(f"only matchLabels selectors are checked here: {selector}")
    return all(labels.get(name) == value for name, value in selector.get("matchLabels", {}).items())


def test_every_kustomization_builds_on_its_own() -> None:
    for root in ROOTS:
        assert build(root), f"{root} renders nothing"
    for name in COMPONENT_NAMES:
        assert render((name,))


def test_no_secret_values_are_shipped(manifests: list[Manifest]) -> None:
    assert not of_kind(manifests, "Secret")


def test_every_object_carries_the_common_label(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        labels = manifest["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "marketsync", manifest["metadata"]
    for name, template in pod_templates(manifests):
        assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "marketsync", name


def test_pods_run_hardened(manifests: list[Manifest]) -> None:
    service_accounts = of_kind(manifests, "ServiceAccount")
    for name, template in pod_templates(manifests):
        spec = template["spec"]
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] >= 10000, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert service_accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: /tmp must be a writable emptyDir"
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, (name, bound)


def test_python_workloads_use_the_project_image_and_a_module_command(
    manifests: list[Manifest],
) -> None:
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            if name == "gateway":
                assert container["image"] == "envoyproxy/envoy:v1.40.0"
            else:
                assert container["image"] == "marketsync", name
                assert container["command"][:2] == ["python", "-m"], name


def test_grpc_services_have_native_probes_and_a_grace_period(manifests: list[Manifest]) -> None:
    deployments = of_kind(manifests, "Deployment")
    for name, (service_name, port) in GRPC_SERVICES.items():
        spec = deployments[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["ports"] == [
            {"name": "grpc", "containerPort": port},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ]
        env = env_of(container)
        assert env["GRPC_PORT"]["value"] == str(port)
        assert env["METRICS_PORT"]["value"] == str(METRICS_PORT)
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": service_name}
        # Liveness asks about the server as a whole.
        assert container["livenessProbe"]["grpc"] == {"port": port}
        grace = float(env["SHUTDOWN_GRACE_SECONDS"]["value"])
        assert spec["terminationGracePeriodSeconds"] > grace, name


def test_gateway_probes_its_public_port(manifests: list[Manifest]) -> None:
    (container,) = of_kind(manifests, "Deployment")["gateway"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080},
        {"name": "metrics", "containerPort": ENVOY_STATS_PORT},
    ]
    # Envoy's own readiness, not every service's (/healthz): see test_rollout_manifests.py.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert container["livenessProbe"]["tcpSocket"] == {"port": 8080}


def secret_references(template: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(Secret, key) of everything a pod reads from Secrets; key None for a whole Secret."""
    spec = template["spec"]
    references: set[tuple[str, str | None]] = set()
    for container in spec["containers"]:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                references.add((source["secretRef"]["name"], None))
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference is not None:
                references.add((reference["name"], reference["key"]))
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            references.add((volume["secret"]["secretName"], None))
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                references.add((source["secret"]["name"], None))
    return references


def test_secrets_reach_only_the_pods_that_need_them(
    manifests: list[Manifest], example_objects: list[Manifest], components: tuple[str, ...]
) -> None:
    expected = dict(SECRET_READERS)
    if "aws-static-keys" in components:
        expected |= STATIC_AWS_KEY_READERS
    readers: dict[tuple[str, str | None], set[str]] = {reference: set() for reference in expected}
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            assert "envFrom" not in container, f"{name}: name each secret key it needs"
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference is not None:
                    assert variable["name"] == reference["key"], name
        for reference in secret_references(template):
            readers.setdefault(reference, set()).add(name)
    assert readers == expected
    example_keys = {
        (example["metadata"]["name"], key)
        for example in example_objects
        if example["kind"] == "Secret"
        for key in example["stringData"]
    }
    assert example_keys == set(SECRET_READERS) | set(STATIC_AWS_KEY_READERS)


def test_no_pod_holds_another_services_private_key(manifests: list[Manifest]) -> None:
    for name, template in pod_templates(manifests):
        secrets = {secret for secret, _ in secret_references(template)}
        assert secrets <= {OWN_SECRET.get(name)}, f"{name} reads {secrets}"
        (container,) = template["spec"]["containers"]
        env = env_of(container)
        if "SERVICE_PRIVATE_KEY" in env:
            reference = env["SERVICE_PRIVATE_KEY"]["valueFrom"]["secretKeyRef"]
            assert reference["name"] == OWN_SECRET[name], name
    callers = {
        name
        for name, template in pod_templates(manifests)
        for container in template["spec"]["containers"]
        if "SERVICE_PRIVATE_KEY" in env_of(container)
    }
    # Auth calls no other service, so it has no service key; the rest each have their own.
    assert callers == {"catalog", "sync", "sync-scheduler"}


def test_only_auth_can_sign_user_tokens(manifests: list[Manifest]) -> None:
    deployments = of_kind(manifests, "Deployment")
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            env = env_of(container)
            assert "JWT_SECRET" not in env, f"{name}: whoever holds JWT_SECRET can mint tokens"
            assert ("JWT_PRIVATE_KEY" in env) == (name == "auth"), name
    for name in GRPC_SERVICES:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert env_of(container)["JWT_ALGORITHM"]["value"] == "EdDSA", name


def test_public_keys_come_from_one_config_map(
    manifests: list[Manifest], example_objects: list[Manifest]
) -> None:
    readers: dict[str, set[str]] = {key: set() for key in PUBLIC_KEY_READERS}
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("configMapKeyRef")
                if reference is not None:
                    assert reference["name"] == PUBLIC_KEYS, name
                    assert variable["name"] == reference["key"], name
                    readers[reference["key"]].add(name)
    assert readers == PUBLIC_KEY_READERS
    (config_map,) = [example for example in example_objects if example["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == PUBLIC_KEYS
    assert set(config_map["data"]) == set(PUBLIC_KEY_READERS)


def test_aws_keys_only_from_the_static_keys_component_and_real_endpoints(
    manifests: list[Manifest], components: tuple[str, ...]
) -> None:
    sandbox = {
        "DYNAMODB_ENDPOINT_URL",
        "AMAZON_SP_API_ENDPOINT",
        "AMAZON_LWA_TOKEN_URL",
        "WALMART_API_BASE_URL",
    }
    static_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    holders = set()
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            env = env_of(container)
            assert not sandbox & set(env), name
            if static_keys & set(env):
                holders.add(name)
                assert static_keys <= set(env), name
    expected = {"catalog", "catalog-tables"} if "aws-static-keys" in components else set()
    assert holders == expected
    role_annotated = {
        name
        for name, account in of_kind(manifests, "ServiceAccount").items()
        if "eks.amazonaws.com/role-arn" in account["metadata"].get("annotations", {})
    }
    expected = {"catalog", "catalog-tables"} if "aws-irsa" in components else set()
    assert role_annotated == expected


def test_services_select_a_deployment_and_target_its_ports(manifests: list[Manifest]) -> None:
    deployments = of_kind(manifests, "Deployment")
    for name, service in of_kind(manifests, "Service").items():
        selector = {"matchLabels": service["spec"]["selector"]}
        matched = [
            d
            for d, m in deployments.items()
            if selects(selector, m["spec"]["template"]["metadata"]["labels"])
        ]
        assert matched == [name], f"Service {name} selects {matched}"
        deployment = deployments[name]
        assert selects(
            deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
        )
        container_ports = {
            port_key
            for container in deployment["spec"]["template"]["spec"]["containers"]
            for port in container["ports"]
            for port_key in (port["name"], port["containerPort"])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (name, port)
            assert port["name"] == ("http" if name == "gateway" else "grpc"), name


def test_addresses_name_real_services(manifests: list[Manifest]) -> None:
    ports = {
        name: {port["port"] for port in service["spec"]["ports"]}
        for name, service in of_kind(manifests, "Service").items()
    }
    for name, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            for variable, spec in env_of(container).items():
                if variable.endswith("_ADDRESS"):
                    host, _, port = spec["value"].partition(":")
                    assert int(port) in ports[host], (name, variable)


def test_scheduling_is_left_to_the_cron_job(manifests: list[Manifest]) -> None:
    (sync,) = of_kind(manifests, "Deployment")["sync"]["spec"]["template"]["spec"]["containers"]
    assert env_of(sync)["SYNC_SCHEDULE_INTERVAL_SECONDS"]["value"] == "0"
    scheduler = of_kind(manifests, "CronJob")["sync-scheduler"]["spec"]
    assert scheduler["schedule"] == "*/15 * * * *"
    assert scheduler["concurrencyPolicy"] == "Forbid"


def test_scheduler_queues_due_syncs_with_auth(manifests: list[Manifest]) -> None:
    cron_job = of_kind(manifests, "CronJob")["sync-scheduler"]
    (container,) = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.sync.scheduler"]
    env = env_of(container)
    # It calls auth's EnqueueDueSyncs; replicas claim the queued syncs, none is called.
    assert env["AUTH_ADDRESS"]["value"] == "auth:50051"
    assert "SYNC_ADDRESS" not in env
    assert int(env["SYNC_INTERVAL_SECONDS"]["value"]) > 0
    # Auth counts an organization overdue against the interval the scheduler keeps.
    (auth,) = of_kind(manifests, "Deployment")["auth"]["spec"]["template"]["spec"]["containers"]
    assert env_of(auth)["SYNC_INTERVAL_SECONDS"] == env["SYNC_INTERVAL_SECONDS"]
    # Jitter within one schedule period, so runs do not pile up.
    assert 0 <= int(env["SYNC_JITTER_SECONDS"]["value"]) <= 15 * 60
    assert env["SERVICE_PRIVATE_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "marketsync-scheduler"


def test_sync_runs_as_many_syncs_as_its_memory_limit_allows(manifests: list[Manifest]) -> None:
    spec = of_kind(manifests, "Deployment")["sync"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    # Set explicitly: the service's default (100) would outgrow the memory limit.
    concurrent = int(env["SYNC_MAX_CONCURRENT"]["value"])
    limit = mebibytes(container["resources"]["limits"]["memory"])
    assert concurrent >= 1
    assert SYNC_IDLE_MIB + concurrent * SYNC_EACH_MIB <= 0.8 * limit, (concurrent, limit)
    # Memory follows the claimed syncs: requested in full, never overcommitted.
    assert mebibytes(container["resources"]["requests"]["memory"]) == limit
    # Running syncs are handed back at once on SIGTERM; a grace longer than auth's lease
    # (120 s, after which a dead replica's syncs are queued again) would buy nothing.
    assert spec["terminationGracePeriodSeconds"] < 120


def test_gateway_mounts_its_rendered_config(manifests: list[Manifest]) -> None:
    spec = of_kind(manifests, "Deployment")["gateway"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    config_map = of_kind(manifests, "ConfigMap")["gateway-config"]
    (volume,) = [
        v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "gateway-config"
    ]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    files = {f"{mount['mountPath']}/{name}" for name in config_map["data"]} | {
        f"{mount['mountPath']}/{name}" for name in config_map["binaryData"]
    }
    config_path = container["args"][container["args"].index("--config-path") + 1]
    assert config_path in files
    listener = yaml.safe_load(config_map["data"]["envoy.json"])["static_resources"]["listeners"][0]
    transcoder = next(
        f
        for f in listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    )
    assert transcoder["typed_config"]["proto_descriptor"] in files


def test_gateway_mounts_the_api_documents_its_routes_answer(manifests: list[Manifest]) -> None:
    spec = of_kind(manifests, "Deployment")["gateway"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    config_map = of_kind(manifests, "ConfigMap")["gateway-docs"]
    (volume,) = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "gateway-docs"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    files = {f"{mount['mountPath']}/{name}" for name in config_map.get("data", {})} | {
        f"{mount['mountPath']}/{name}" for name in config_map.get("binaryData", {})
    }
    envoy = yaml.safe_load(of_kind(manifests, "ConfigMap")["gateway-config"]["data"]["envoy.json"])
    manager = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    answered = {
        route["direct_response"]["body"]["filename"]
        for route in routes
        if "filename" in route.get("direct_response", {}).get("body", {})
    }
    assert answered and answered <= files
    # A ConfigMap holds at most 1 MiB.
    assert len(json.dumps(config_map)) < 1024 * 1024


def _policy_peers(policy: Manifest, direction: str) -> Iterator[tuple[dict[str, Any], Any]]:
    """(peer selector or {} for anywhere, port) of each ingress or egress rule. Peers in other
    namespaces (a namespaceSelector alone: Prometheus's) are none of the suite's pods nor
    anywhere: test_network_policies_let_prometheus_scrape_the_metrics_ports_only checks them."""
    peers_key = "from" if direction == "ingress" else "to"
    for rule in policy["spec"].get(direction, []):
        peers = rule.get(peers_key) or [{}]
        for peer in peers:
            if set(peer) == {"namespaceSelector"}:
                continue
            for port in rule.get("ports") or [{}]:
                yield peer.get("podSelector", {}), port.get("port")


def _apps(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {name: template["metadata"]["labels"] for name, template in pod_templates(manifests)}


def _connection_allowed(
    policies: list[Manifest], apps: dict[str, dict[str, str]], source: str, target: str, port: int
) -> bool:
    """Whether `source` may open a connection to `target` on `port` (the target's ingress and
    the source's egress both allow it)."""

    def allowed(direction: str, subject: str, other: str) -> bool:
        return any(
            selects(policy["spec"]["podSelector"], apps[subject])
            and (not selector or selects(selector, apps[other]))
            and allowed_port in (None, port)
            for policy in policies
            for selector, allowed_port in _policy_peers(policy, direction)
        )

    return allowed("ingress", target, source) and allowed("egress", source, target)


def _reachable_from(
    policies: list[Manifest], apps: dict[str, dict[str, str]], target: str
) -> set[str]:
    """Pods allowed to open a connection to `target` (both its ingress and their egress)."""

    def allowed(policy_direction: str, subject: str, other: str) -> bool:
        return any(
            selects(policy["spec"]["podSelector"], apps[subject])
            and (not selector or selects(selector, apps[other]))
            for policy in policies
            for selector, _ in _policy_peers(policy, policy_direction)
        )

    return {
        source
        for source in apps
        if source != target
        and allowed("ingress", target, source)
        and allowed("egress", source, target)
    }


@pytest.mark.parametrize("components", [("network-policies",)], ids=["network-policies"])
def test_network_policies_allow_exactly_the_service_graph(manifests: list[Manifest]) -> None:
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    apps = _apps(manifests)
    for policy in policies:
        selectors = [policy["spec"]["podSelector"]] + [
            selector
            for direction in ("ingress", "egress")
            for selector, _ in _policy_peers(policy, direction)
        ]
        for selector in filter(None, selectors):
            assert any(selects(selector, labels) for labels in apps.values()), selector
    default_deny = of_kind(manifests, "NetworkPolicy")["default-deny"]["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # The scheduler queues due syncs with auth; sync replicas claim them from auth, so nothing
    # but the gateway calls sync.
    assert _reachable_from(policies, apps, "auth") == {
        "gateway",
        "catalog",
        "sync",
        "sync-scheduler",
    }
    assert _reachable_from(policies, apps, "catalog") == {"gateway", "sync"}
    assert _reachable_from(policies, apps, "sync") == {"gateway"}
    # Only the gateway takes traffic from outside the suite.
    open_ingress = {
        name
        for name in apps
        for policy in policies
        if selects(policy["spec"]["podSelector"], apps[name])
        for selector, port in _policy_peers(policy, "ingress")
        if not selector
    }
    assert open_ingress == {"gateway"}
    external_egress = {
        (name, port)
        for name in apps
        for policy in policies
        if policy["spec"]["podSelector"] and selects(policy["spec"]["podSelector"], apps[name])
        for selector, port in _policy_peers(policy, "egress")
        if not selector
    }
    assert external_egress == {
        ("auth", 5432),
        ("auth-migrations", 5432),
        ("catalog", 443),
        ("catalog-tables", 443),
        ("sync", 443),
    }


@pytest.mark.parametrize("components", [("network-policies",)], ids=["network-policies"])
def test_network_policies_let_prometheus_scrape_the_metrics_ports_only(
    manifests: list[Manifest],
) -> None:
    from_other_namespaces = [
        (policy, rule)
        for policy in of_kind(manifests, "NetworkPolicy").values()
        for rule in policy["spec"].get("ingress", [])
        if any("namespaceSelector" in peer for peer in rule.get("from", []))
    ]
    (policy, rule), *others = from_other_namespaces
    assert not others
    assert rule == {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "ports": [{"protocol": "TCP", "port": "metrics"}],
    }
    apps = _apps(manifests)
    for name in (*GRPC_SERVICES, "gateway"):
        assert selects(policy["spec"]["podSelector"], apps[name]), name


@pytest.mark.parametrize("components", [("network-policies",)], ids=["network-policies"])
def test_network_policies_let_the_scheduler_reach_auth_only(manifests: list[Manifest]) -> None:
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    apps = _apps(manifests)
    assert _connection_allowed(policies, apps, "sync-scheduler", "auth", 50051)
    assert not _connection_allowed(policies, apps, "sync-scheduler", "sync", 50053)
    scheduler_egress = {
        (tuple(sorted(selector.get("matchLabels", {}).values())), port)
        for policy in policies
        if selects(policy["spec"]["podSelector"], apps["sync-scheduler"])
        for selector, port in _policy_peers(policy, "egress")
        if port != 53
    }
    assert scheduler_egress == {(("auth",), 50051)}


def _autoscaled_replicas(manifests: list[Manifest]) -> dict[str, int]:
    """Deployment name -> minReplicas of the HorizontalPodAutoscaler that scales it."""
    return {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["minReplicas"]
        for hpa in of_kind(manifests, "HorizontalPodAutoscaler").values()
        if hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    }


def test_autoscaled_deployments_leave_the_replica_count_to_the_autoscaler(
    manifests: list[Manifest], components: tuple[str, ...]
) -> None:
    deployments = of_kind(manifests, "Deployment")
    autoscaled = _autoscaled_replicas(manifests)
    every = {"gateway", "auth", "catalog", "sync"}
    assert set(autoscaled) == (every if "high-availability" in components else set())
    for name in autoscaled:
        # A `replicas` in the manifest would be put back on every apply, against the HPA.
        assert "replicas" not in deployments[name]["spec"], name


@pytest.mark.parametrize("components", [("high-availability",)], ids=["high-availability"])
def test_sync_is_autoscaled_on_cpu_and_memory(manifests: list[Manifest]) -> None:
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")["sync"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sync"}
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    targets = {}
    for metric in spec["metrics"]:
        assert metric["type"] == "Resource", "no custom metrics adapter is assumed"
        target = metric["resource"]["target"]
        assert target["type"] == "Utilization"
        targets[metric["resource"]["name"]] = target["averageUtilization"]
    assert set(targets) == {"cpu", "memory"}
    assert all(0 < utilization <= 100 for utilization in targets.values()), targets
    # Utilization is measured against requests: every container must request both.
    (container,) = of_kind(manifests, "Deployment")["sync"]["spec"]["template"]["spec"][
        "containers"
    ]
    requests = container["resources"]["requests"]
    assert {"cpu", "memory"} <= set(requests)
    # Scale up before the pods are near their memory limit (and its OOM kills).
    memory_at_target = mebibytes(requests["memory"]) * targets["memory"] / 100
    assert memory_at_target < 0.8 * mebibytes(container["resources"]["limits"]["memory"])
    # A scale-down SIGTERMs a pod, which hands its syncs back: slowly, one pod at a time.
    scale_down = spec["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 600
    assert scale_down["policies"]
    assert all(p["type"] == "Pods" and p["value"] == 1 for p in scale_down["policies"])
    assert all(p["periodSeconds"] >= 60 for p in scale_down["policies"])


@pytest.mark.parametrize("components", [("high-availability",)], ids=["high-availability"])
def test_high_availability_keeps_two_replicas_through_disruptions(
    manifests: list[Manifest],
) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget")
    autoscaled = _autoscaled_replicas(manifests)
    for name, deployment in of_kind(manifests, "Deployment").items():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        replicas = autoscaled[name] if name in autoscaled else spec["replicas"]
        assert replicas >= 2, name
        assert budgets[name]["spec"]["minAvailable"] < replicas, name
        assert selects(budgets[name]["spec"]["selector"], labels)
        constraints = spec["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        assert all(selects(c["labelSelector"], labels) for c in constraints), name


def test_secret_example_is_not_part_of_any_kustomization() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secret.example.yaml" not in kustomization.read_text(), kustomization
