"""deploy/Dockerfile builds the one image every Python workload runs (no Docker engine here, so
its instructions are checked as text)."""

from __future__ import annotations

import re

from tests.deploy.conftest import REPO, render
from tests.deploy.test_manifests import pod_templates

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_stages_start_from_python_slim() -> None:
    bases = [argument.split()[0] for name, argument in _instructions() if name == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)


def test_installs_the_locked_dependencies_then_the_project_without_extras_or_cache() -> None:
    runs = " ".join(argument for name, argument in _instructions() if name == "RUN")
    assert "uv export --frozen --no-emit-project" in runs
    assert "pip install --no-cache-dir --require-hashes -r" in runs
    assert re.search(r"pip install --no-cache-dir --no-deps \.(\s|$)", runs)
    assert "[dev" not in runs and "[local" not in runs and "--extra" not in runs


def test_runs_as_the_user_the_pods_require() -> None:
    users = [argument for name, argument in _instructions() if name == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    for name, template in pod_templates(render(())):
        if name != "gateway":
            assert str(template["spec"]["securityContext"]["runAsUser"]) == uid, name
