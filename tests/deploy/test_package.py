"""The image installs the wheel built from its build context (deploy/Dockerfile installs `.`): the
wheel built from what Dockerfile.dockerignore admits must carry the migrations and no dev tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO


def _context_entries() -> list[str]:
    lines = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    context, out = tmp_path_factory.mktemp("context"), tmp_path_factory.mktemp("wheel")
    for entry in _context_entries():
        source = REPO / entry
        if source.is_dir():
            ignored = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(source, context / entry, ignore=ignored)
        else:
            shutil.copy2(source, context / entry)
    # No build isolation: the setuptools of the test environment, nothing fetched.
    subprocess.run(
        [
            str(Path(sys.executable).with_name("uv")),
            "build",
            "--wheel",
            "--no-build-isolation",
            "--quiet",
            "--out-dir",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_carries_every_migration(wheel_names: list[str]) -> None:
    shipped = sorted(name for name in wheel_names if name.startswith("services/auth/schema/"))
    expected = sorted(
        f"services/auth/schema/{path.name}" for path in (REPO / "schema").glob("*.sql")
    )
    assert shipped == expected and expected


def test_the_wheel_leaves_the_dev_tools_and_tests_out(wheel_names: list[str]) -> None:
    top_levels = {name.split("/", 1)[0] for name in wheel_names if "/" in name}
    assert {"marketsync", "services", "gateway", "marketsync_cli"} <= top_levels
    assert not top_levels & {"dev", "tests", "protos"}


def test_the_image_context_leaves_the_dev_tools_out() -> None:
    assert not [entry for entry in _context_entries() if entry.split("/")[0] in {"dev", "tests"}]


def test_no_runtime_module_imports_the_dev_tools() -> None:
    runtime = [REPO / "marketsync", REPO / "services", REPO / "gateway", REPO / "marketsync_cli"]
    importers = [
        str(path.relative_to(REPO))
        for root in runtime
        for path in root.rglob("*.py")
        if any(
            line.startswith(("from dev", "import dev")) for line in path.read_text().splitlines()
        )
    ]
    assert importers == []
