"""Every object of every render of deploy/k8s (each component set, and the example overlay where
kubectl renders it) is valid for each Kubernetes release the suite supports, strictly (a field
the API does not know fails too), by the schemas kubernetes-validate ships. Objects of custom
resources (the Prometheus Operator's, in the monitoring component) have no such schema; they
are listed, not validated."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from tests.deploy.conftest import COMPONENT_SETS, render
from tests.deploy.kustomize_subset import Manifest, key
from tests.deploy.renderers import KUBECTLS
from tests.deploy.test_example_overlay import example_renders

KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")
# API groups whose objects need a CRD installed: no schema here.
CUSTOM_RESOURCE_GROUPS = ("monitoring.coreos.com/",)


def distinct_objects() -> list[Manifest]:
    """Each object once, however many renders hold it."""
    renders = [render(components) for components in COMPONENT_SETS]
    if KUBECTLS:
        renders += example_renders().values()
    by_content = {
        json.dumps(manifest, sort_keys=True): manifest
        for manifests in renders
        for manifest in manifests
    }
    return list(by_content.values())


@pytest.fixture(scope="module")
def objects() -> list[Manifest]:
    return distinct_objects()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid(objects: list[Manifest], version: str) -> None:
    problems = []
    for manifest in objects:
        if manifest["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{key(manifest)}: {error.message} at {list(error.path)}")
    assert problems == []
