"""kustomize_subset, the fallback renderer where no kubectl exists, renders what the real
kustomize (inside kubectl) does, with kubectl on PATH and every versioned `kubectl.1.NN` beside it.

The other tests in this folder render with kubectl itself where it is installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import ROOTS, component_paths, render_with_subset
from tests.deploy.kustomize_subset import key
from tests.deploy.renderers import KUBECTLS, kubectl_kustomize

pytestmark = pytest.mark.skipif(
    not KUBECTLS,
    reason="needs kubectl with kustomize v4+ (components); Debian's kubernetes-client is too old",
)


@pytest.fixture(params=KUBECTLS, ids=lambda path: Path(path).name)
def kubectl(request: pytest.FixtureRequest) -> str:
    path: str = request.param
    return path


def test_kubectl_renders_the_same_objects(kubectl: str, components: tuple[str, ...]) -> None:
    expected = {key(manifest): manifest for manifest in render_with_subset(components)}
    actual = {
        key(manifest): manifest
        for manifest in kubectl_kustomize(kubectl, ROOTS, component_paths(components))
    }
    assert sorted(actual) == sorted(expected)
    for name, manifest in expected.items():
        assert actual[name] == manifest, f"{name} differs between kubectl and kustomize_subset"
