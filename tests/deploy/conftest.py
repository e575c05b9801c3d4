"""Renders of deploy/k8s: base and jobs with each subset of the components, each with or without
one of the AWS identity components; by kubectl where installed (tests/deploy/renderers.py)."""

from __future__ import annotations

import copy
import functools
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize_subset import Manifest, build_combination
from tests.deploy.renderers import KUBECTLS, kubectl_kustomize

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ROOTS = (K8S / "base", K8S / "jobs")
COMPONENT_NAMES = ("network-policies", "high-availability", "monitoring")
# How catalog and the table Job reach AWS: one of these at most, listed after the others.
IDENTITY_COMPONENTS = ("aws-irsa", "aws-pod-identity", "aws-static-keys")
COMPONENT_SETS = [
    subset
    for size in range(len(COMPONENT_NAMES) + 1)
    for subset in combinations(COMPONENT_NAMES, size)
] + [
    identity_set
    for identity in IDENTITY_COMPONENTS
    for identity_set in ((identity,), (*COMPONENT_NAMES, identity))
]


def component_paths(names: tuple[str, ...]) -> list[Path]:
    return [K8S / "components" / name for name in names]


def render(names: tuple[str, ...]) -> list[Manifest]:
    """The objects base and jobs render to with these components, as kubectl renders them where
    it is installed (the authority), else as kustomize_subset does."""
    return copy.deepcopy(_render(names))


@functools.cache
def _render(names: tuple[str, ...]) -> list[Manifest]:
    if KUBECTLS:
        return kubectl_kustomize(KUBECTLS[0], ROOTS, component_paths(names))
    return render_with_subset(names)


def render_with_subset(names: tuple[str, ...]) -> list[Manifest]:
    return build_combination(ROOTS, component_paths(names))


@pytest.fixture(params=COMPONENT_SETS, ids=lambda names: "+".join(("base", *names)))
def components(request: pytest.FixtureRequest) -> tuple[str, ...]:
    names: tuple[str, ...] = request.param
    return names


@pytest.fixture
def manifests(components: tuple[str, ...]) -> list[Manifest]:
    return render(components)


@pytest.fixture(scope="session")
def example_objects() -> list[Manifest]:
    """The Secrets and the public-key ConfigMap an operator creates, as the example shows them."""
    return [doc for doc in yaml.safe_load_all((K8S / "secret.example.yaml").read_text()) if doc]
