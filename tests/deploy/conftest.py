"""Renders of deploy/k8s: base and jobs with each subset of the components."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize_subset import Manifest, build_combination

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ROOTS = (K8S / "base", K8S / "jobs")
COMPONENT_NAMES = ("network-policies", "high-availability")
COMPONENT_SETS = [
    subset
    for size in range(len(COMPONENT_NAMES) + 1)
    for subset in combinations(COMPONENT_NAMES, size)
]


def component_paths(names: tuple[str, ...]) -> list[Path]:
    return [K8S / "components" / name for name in names]


def render(names: tuple[str, ...]) -> list[Manifest]:
    return build_combination(ROOTS, component_paths(names))


@pytest.fixture(params=COMPONENT_SETS, ids=lambda names: "+".join(("base", *names)))
def components(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return request.param


@pytest.fixture
def manifests(components: tuple[str, ...]) -> list[Manifest]:
    return render(components)


@pytest.fixture(scope="session")
def example_objects() -> list[Manifest]:
    """The Secrets and the public-key ConfigMap an operator creates, as the example shows them."""
    return [doc for doc in yaml.safe_load_all((K8S / "secret.example.yaml").read_text()) if doc]
