"""The example overlay (deploy/k8s/examples/production) renders with kubectl as README.md says
an overlay of your own would: the namespace under Pod Security "restricted", every object in
it, the project image by registry and digest, the IAM roles replaced. It uses kustomize features
(namespace, images, JSON patches) that kustomize_subset does not have, so it needs kubectl."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import K8S
from tests.deploy.kustomize_subset import Manifest
from tests.deploy.renderers import KUBECTLS, kubectl_kustomize_directory
from tests.deploy.test_manifests import of_kind, pod_templates

EXAMPLE = K8S / "examples" / "production"
NAMESPACE = "marketsync"
BY_DIGEST = re.compile(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9/._-]+@sha256:[0-9a-f]{64}$")

pytestmark = pytest.mark.skipif(
    not KUBECTLS, reason="the example overlay uses kustomize features only kubectl has"
)


def example_renders() -> dict[str, list[Manifest]]:
    """The example's application and release-Job overlays, as kubectl renders them."""
    return {
        "application": kubectl_kustomize_directory(KUBECTLS[0], EXAMPLE),
        "jobs": kubectl_kustomize_directory(KUBECTLS[0], EXAMPLE / "jobs"),
    }


@pytest.fixture(scope="module")
def renders() -> dict[str, list[Manifest]]:
    return example_renders()


def test_the_namespace_enforces_the_restricted_pod_security_profile(
    renders: dict[str, list[Manifest]],
) -> None:
    (namespace,) = of_kind(renders["application"], "Namespace").values()
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
    assert namespace["metadata"]["name"] == NAMESPACE


def test_every_object_is_in_the_namespace_and_the_image_is_pinned_by_digest(
    renders: dict[str, list[Manifest]],
) -> None:
    for manifests in renders.values():
        for manifest in manifests:
            if manifest["kind"] != "Namespace":
                assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["metadata"]
        for name, template in pod_templates(manifests):
            for container in template["spec"]["containers"]:
                assert BY_DIGEST.match(container["image"]), (name, container["image"])


def test_each_workload_gets_its_own_role(renders: dict[str, list[Manifest]]) -> None:
    roles = {
        name: account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        for manifests in renders.values()
        for name, account in of_kind(manifests, "ServiceAccount").items()
        if "eks.amazonaws.com/role-arn" in account["metadata"].get("annotations", {})
    }
    assert set(roles) == {"catalog", "catalog-tables"}
    assert roles["catalog"] != roles["catalog-tables"]
