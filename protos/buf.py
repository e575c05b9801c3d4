"""buf's lint and breaking-change checks of protos/ (run by `make buf` and the tests).

Usage: python protos/buf.py lint|breaking|baseline [--protos DIR]

buf cannot fetch google/api/*.proto here (its googleapis module lives in the Buf Schema
Registry), so protoc builds an image with generate.py's include paths and buf checks that.
`breaking` compares against protos/buf-baseline.binpb, the API of the last release: `baseline`
writes it from the committed protos, as part of cutting a release. A committed image rather than
a git tag: buf could not build a tagged tree either (same imports), and the image works in any
clone, shallow or without tags, and shows in review when a release moves it. buf itself comes
from npm (@bufbuild/buf) into .tools/ on first use.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from generate import PROTO_ROOT, REPO, proto_files, run_protoc

BUF_VERSION = "1.75.0"
TOOLS = REPO / ".tools"
BUF = TOOLS / "node_modules" / ".bin" / "buf"
CONFIG = PROTO_ROOT / "buf.yaml"
BASELINE = PROTO_ROOT / "buf-baseline.binpb"
# Our files only: the image also holds the google/ files they import.
OUR_PROTOS = "marketsync"


def installed_buf() -> Path:
    """buf at BUF_VERSION, installed from npm when missing or of another version."""
    package = TOOLS / "node_modules" / "@bufbuild" / "buf" / "package.json"
    if BUF.exists() and json.loads(package.read_text())["version"] == BUF_VERSION:
        return BUF
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("buf is installed from npm (@bufbuild/buf): install Node.js and npm")
    subprocess.run(  # noqa: S603 - npm by name, a pinned package
        [npm, "install", "--prefix", str(TOOLS), "--no-save", "--no-audit", "--no-fund",
         "--loglevel=error", f"@bufbuild/buf@{BUF_VERSION}"],
        check=True,
    )  # fmt: skip
    return BUF


def build_image(proto_root: Path, image: Path) -> None:
    """A descriptor set of the protos under proto_root, their imports and comments included."""
    run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={image}",
            *proto_files(proto_root),
        ],
        proto_root,
    )


def buf(*args: str) -> int:
    return subprocess.run([str(installed_buf()), *args], check=False).returncode  # noqa: S603


def lint(image: Path) -> int:
    return buf("lint", str(image), "--config", str(CONFIG), "--path", OUR_PROTOS)


def breaking(image: Path) -> int:
    return buf(
        "breaking", str(image), "--against", str(BASELINE),
        "--config", str(CONFIG), "--path", OUR_PROTOS,
    )  # fmt: skip


def write_baseline(image: Path) -> int:
    """The committed protos (git HEAD), not whatever is being edited, become the baseline."""
    committed = image.parent / "committed"
    archive = subprocess.run(
        ["git", "archive", "HEAD", "protos/"],  # noqa: S607
        cwd=REPO, check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(committed, filter="data")
    build_image(committed / "protos", image)
    return buf(
        "build", str(image), "--path", OUR_PROTOS, "--exclude-source-info", "-o", str(BASELINE)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("lint", "breaking", "baseline"))
    parser.add_argument("--protos", type=Path, default=PROTO_ROOT, help="the protos' root")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "image.binpb"
        if args.check == "baseline":
            return write_baseline(image)
        build_image(args.protos.resolve(), image)
        return lint(image) if args.check == "lint" else breaking(image)


if __name__ == "__main__":
    sys.exit(main())
