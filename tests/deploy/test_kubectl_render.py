"""The real kustomize (inside kubectl) renders what kustomize_subset renders.

Debian's kubernetes-client (kubectl 1.20) embeds a kustomize too old for components, so this
runs only where a kubectl with kustomize v4 or newer is on PATH; the other tests in this
folder check the manifests through kustomize_subset everywhere. Versioned kubectls installed
beside it (`kubectl.1.29`, ... as the Google Cloud SDK ships them) are checked too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import ROOTS, component_paths, render
from tests.deploy.kustomize_subset import Manifest, key

KUBECTL = shutil.which("kubectl")
HASHED_NAME = re.compile(r"^(?P<name>.+)-[a-z0-9]{10}$")


VERSIONED = re.compile(r"^kubectl\.(\d+)\.(\d+)$")


def _kustomize_major_version(kubectl: str) -> int:
    result = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, check=False
    )
    found = re.search(r"Kustomize Version: v(\d+)", result.stdout)
    return int(found.group(1)) if found else 0


def _kubectls() -> list[str]:
    """kubectl on PATH and the versioned kubectls beside it, those with kustomize v4+."""
    if KUBECTL is None:
        return []
    beside = {
        path: tuple(int(part) for part in match.groups())
        for path in Path(os.path.realpath(KUBECTL)).parent.iterdir()
        if (match := VERSIONED.match(path.name))
    }
    candidates = [KUBECTL, *(str(path) for path in sorted(beside, key=beside.__getitem__))]
    return [kubectl for kubectl in candidates if _kustomize_major_version(kubectl) >= 4]


KUBECTLS = _kubectls()

pytestmark = pytest.mark.skipif(
    not KUBECTLS,
    reason="needs kubectl with kustomize v4+ (components); Debian's kubernetes-client is too old",
)


@pytest.fixture(params=KUBECTLS, ids=lambda path: Path(path).name)
def kubectl(request: pytest.FixtureRequest) -> str:
    return request.param


def _kubectl_kustomize(kubectl: str, tmp_path: Path, components: tuple[str, ...]) -> list[Manifest]:
    def relative(path: Path) -> str:
        return os.path.relpath(path, tmp_path)

    kustomization = {
        "resources": [relative(root) for root in ROOTS],
        "components": [relative(path) for path in component_paths(components)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _normalize(manifests: list[Manifest]) -> list[Manifest]:
    """Drop kustomize's content hash from generated ConfigMap names (and from references), and
    its line breaks in base64 values."""
    renames = {}
    for manifest in manifests:
        if manifest["kind"] == "ConfigMap":
            binary = manifest.get("binaryData", {})
            for name, encoded in binary.items():
                binary[name] = "".join(encoded.split())
            match = HASHED_NAME.match(manifest["metadata"]["name"])
            if match:
                renames[manifest["metadata"]["name"]] = match["name"]

    def rename(node: object) -> object:
        if isinstance(node, dict):
            return {name: rename(value) for name, value in node.items()}
        if isinstance(node, list):
            return [rename(item) for item in node]
        return renames.get(node, node) if isinstance(node, str) else node

    return [rename(manifest) for manifest in manifests]


def test_kubectl_renders_the_same_objects(
    kubectl: str, tmp_path: Path, components: tuple[str, ...]
) -> None:
    expected = {key(manifest): manifest for manifest in render(components)}
    actual = {
        key(manifest): manifest
        for manifest in _normalize(_kubectl_kustomize(kubectl, tmp_path, components))
    }
    assert sorted(actual) == sorted(expected)
    for name, manifest in expected.items():
        assert actual[name] == manifest, f"{name} differs between kubectl and kustomize_subset"
