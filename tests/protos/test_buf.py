"""buf lint and buf breaking pass on protos/ (protos/buf.py, buf from npm into .tools/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUF_SCRIPT = REPO / "protos" / "buf.py"

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None,
    reason="buf is installed from npm (@bufbuild/buf): needs Node.js and npm",
)


def run_buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUF_SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_protos_pass_buf_lint() -> None:
    result = run_buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_protos_keep_compatible_with_the_last_release() -> None:
    result = run_buf("breaking")
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}\nprotos/ breaks protos/buf-baseline.binpb, the last "
        "release's API: keep the change compatible"
    )


def test_a_renumbered_field_is_reported_as_breaking(tmp_path: Path) -> None:
    shutil.copytree(REPO / "protos" / "marketsync", tmp_path / "marketsync")
    catalog = tmp_path / "marketsync" / "catalog" / "v1" / "catalog.proto"
    text = catalog.read_text()
    assert "  string price = 2;" in text
    catalog.write_text(text.replace("  string price = 2;", "  string price = 20;"))

    result = run_buf("breaking", "--protos", str(tmp_path))

    assert result.returncode != 0
    assert 'field "2" with name "price" on message "Listing" was deleted' in result.stdout
