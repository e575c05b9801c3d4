"""Generated code is produced by `make proto` only: a stale or hand-edited file fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATED = [
    *sorted(p.relative_to(REPO) for p in (REPO / "marketsync").glob("*/v1/*") if p.is_file()),
    Path("gateway/descriptor.pb"),
]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "protos" / "generate.py"), str(tmp_path)], check=True
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in fresh if "/v1/" in str(p) or p.suffix == ".pb"] == sorted(
        str(p) for p in GENERATED
    ), "generated files differ from protos/: run `make proto`"
    stale = [str(p) for p in GENERATED if (tmp_path / p).read_bytes() != (REPO / p).read_bytes()]
    assert not stale, f"stale generated files (run `make proto`): {stale}"
