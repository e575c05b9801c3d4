"""Renders of deploy/k8s: kubectl's kustomize (the authority) where a kubectl with kustomize v4+
is installed, kustomize_subset elsewhere.

Debian's kubernetes-client (kubectl 1.20) embeds a kustomize too old for components, so it does
not count. Versioned kubectls beside the one on PATH (`kubectl.1.29`, ... as the Google Cloud
SDK ships them) are found too, for test_kubectl_render.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import yaml

from tests.deploy.kustomize_subset import Manifest

HASHED_NAME = re.compile(r"^(?P<name>.+)-[a-z0-9]{10}$")
VERSIONED = re.compile(r"^kubectl\.(\d+)\.(\d+)$")
# The oldest versioned kubectl checked: the oldest Kubernetes release the suite supports.
OLDEST_VERSIONED = (1, 29)


def _kustomize_major_version(kubectl: str) -> int:
    result = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, check=False
    )
    found = re.search(r"Kustomize Version: v(\d+)", result.stdout)
    return int(found.group(1)) if found else 0


def kubectls() -> list[str]:
    """kubectl on PATH and the versioned kubectls beside it from OLDEST_VERSIONED on, those with
    kustomize v4+."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return []
    beside = {
        path: tuple(int(part) for part in match.groups())
        for path in Path(os.path.realpath(kubectl)).parent.iterdir()
        if (match := VERSIONED.match(path.name))
        and tuple(int(part) for part in match.groups()) >= OLDEST_VERSIONED
    }
    candidates = [kubectl, *(str(path) for path in sorted(beside, key=beside.__getitem__))]
    return [path for path in candidates if _kustomize_major_version(path) >= 4]


KUBECTLS = kubectls()


def kubectl_kustomize(
    kubectl: str, resources: Iterable[Path], components: Iterable[Path]
) -> list[Manifest]:
    """What `kubectl kustomize` renders for a kustomization of these resources and components,
    generated names without their content hash (see `normalize`)."""
    with tempfile.TemporaryDirectory() as directory:
        here = Path(directory)
        kustomization = {
            "resources": [os.path.relpath(path, here) for path in resources],
            "components": [os.path.relpath(path, here) for path in components],
        }
        (here / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return kubectl_kustomize_directory(kubectl, here)


def kubectl_kustomize_directory(kubectl: str, directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return normalize([doc for doc in yaml.safe_load_all(result.stdout) if doc])


def normalize(manifests: list[Manifest]) -> list[Manifest]:
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

    return [cast(Manifest, rename(manifest)) for manifest in manifests]
