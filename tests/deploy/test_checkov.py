"""checkov, run on what a production install applies (the example overlay and its release Jobs,
rendered by kubectl), finds nothing: each check the manifests cannot pass is skipped by an
annotation next to the object, with the reason (`checkov.io/skip1: CKV_K8S_NN=why`).

checkov pins its own versions of boto3, packaging and many more, which conflict with the suite's,
so it runs from a virtualenv of its own, made here on first use under .venv-tools/ (git ignores
it) from PyPI; without PyPI the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.renderers import KUBECTLS
from tests.deploy.test_example_overlay import example_renders

CHECKOV_VERSION = "3.3.30"
TOOLS = REPO / ".venv-tools"
CHECKOV_VENV = TOOLS / f"checkov-{CHECKOV_VERSION}"

pytestmark = pytest.mark.skipif(
    not KUBECTLS, reason="the example overlay uses kustomize features only kubectl has"
)


def _checkov_python() -> Path:
    python = CHECKOV_VENV / "bin" / "python"
    if python.exists():
        return python
    TOOLS.mkdir(exist_ok=True)
    # Built aside and renamed into place, so a run that stops half-way leaves no broken venv.
    building = TOOLS / f"checkov-{CHECKOV_VERSION}.{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    installed = subprocess.run(
        [
            str(building / "bin" / "python"),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            f"checkov=={CHECKOV_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if installed.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.skip(f"could not install checkov {CHECKOV_VERSION}: {installed.stderr[-500:]}")
    try:
        building.rename(CHECKOV_VENV)
    except OSError:  # another run finished first
        shutil.rmtree(building, ignore_errors=True)
    return python


def test_checkov_finds_nothing_in_a_production_install(tmp_path: Path) -> None:
    for name, manifests in example_renders().items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(
        [
            str(_checkov_python()),
            *("-m", "checkov.main", "--directory", str(tmp_path)),
            *("--framework", "kubernetes", "--output", "json", "--quiet"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(report["summary"]["passed"] for report in reports) > 0, result.stderr
