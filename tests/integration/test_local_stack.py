"""`make run`'s runner: the whole stack comes up listening on loopback only, a service that
crashes is restarted, and SIGTERM stops every process it started."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from marketsync.devstack import REPO, free_port

STARTUP_SECONDS = 90
STOP_SECONDS = 40
RESTART_SECONDS = 45
EXPECTED_PROCESSES = (
    "moto_server",
    "marketsync.sandbox",
    "services.auth.server",
    "services.catalog.server",
    "services.sync.server",
    "envoy",
    "postgres",
)


def test_the_local_stack_listens_on_loopback_restarts_a_crash_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path), "GATEWAY_PORT": str(port)}
    for name in ("CRED_DATABASE_URL", "DYNAMODB_ENDPOINT_URL", "JWT_SECRET"):
        env.pop(name, None)
    runner = subprocess.Popen(
        [sys.executable, "-m", "marketsync.devstack"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _serving(port):
            assert runner.poll() is None, "the stack exited while starting"
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        # pg_ctl daemonizes PostgreSQL: it is found by its data directory, not as a child.
        started = [*psutil.Process(runner.pid).children(recursive=True), *_postgres_of(tmp_path)]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        for expected in EXPECTED_PROCESSES:
            assert expected in names, f"{expected} is not running"
        assert (tmp_path / "jwt_secret").read_text(), "the dev key is kept in the data directory"
        for process in started:
            for listener in process.net_connections(kind="inet"):
                if listener.status == psutil.CONN_LISTEN:
                    assert _loopback(listener.laddr.ip), (process.cmdline(), listener)

        [catalog] = [p for p in started if "services.catalog.server" in p.cmdline()]
        catalog.kill()
        deadline = time.monotonic() + RESTART_SECONDS
        while not (_restarted(runner, "services.catalog.server", catalog.pid) and _serving(port)):
            assert runner.poll() is None, "the stack stopped when one service crashed"
            assert time.monotonic() < deadline, "the crashed service was not restarted"
            time.sleep(0.2)

        started = [*psutil.Process(runner.pid).children(recursive=True), *_postgres_of(tmp_path)]
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(STOP_SECONDS) == 0
        _, alive = psutil.wait_procs(started, timeout=STOP_SECONDS)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            runner.wait(STOP_SECONDS)


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _restarted(runner: subprocess.Popen[bytes], module: str, old_pid: int) -> bool:
    for process in psutil.Process(runner.pid).children(recursive=True):
        try:
            if module in process.cmdline() and process.pid != old_pid:
                return True
        except psutil.Error:
            continue  # gone while we looked
    return False


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _postgres_of(data_dir: Path) -> list[psutil.Process]:
    postgres_dir = str(data_dir / "postgres")
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if postgres_dir in " ".join(process.info["cmdline"] or ())
    ]
