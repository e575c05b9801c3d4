"""`make run`'s runner: the whole stack comes up listening on loopback only, a service that
crashes is restarted, and SIGTERM stops every process it started; Ctrl-C stops them all,
PostgreSQL included, within 5 s; one run at a time has a data directory, and a killed run leaves
nothing in the next one's way."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from dev.stack import REPO, free_port

STARTUP_SECONDS = 90
STOP_SECONDS = 40
# What Ctrl-C promises a person at the terminal.
CTRL_C_SECONDS = 5
RESTART_SECONDS = 45
EXPECTED_PROCESSES = (
    "moto_server",
    "dev.sandbox",
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
        [sys.executable, "-m", "dev.stack"],
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


def test_ctrl_c_stops_everything_within_5_seconds_and_a_second_run_on_the_dir_refuses(
    tmp_path: Path,
) -> None:
    port = free_port()
    runner = _start_runner(tmp_path, port)
    try:
        _wait_until_up(runner, tmp_path)
        assert _serving(port)
        banner = (tmp_path / "runner.log").read_text()
        assert f"API docs       http://127.0.0.1:{port}/docs" in banner
        assert f"--url http://127.0.0.1:{port} login" in banner

        second = subprocess.run(
            [sys.executable, "-m", "dev.stack"],
            cwd=REPO, env=_runner_env(tmp_path, free_port()), capture_output=True, text=True,
            timeout=STARTUP_SECONDS,
        )  # fmt: skip
        assert second.returncode != 0
        assert f"{tmp_path} is in use by another `make run` (pid {runner.pid})" in second.stderr
        assert _serving(port), "the refused run disturbed the running one"

        started = _started_by(runner, tmp_path)
        runner.send_signal(signal.SIGINT)
        alive = _running_after(started, CTRL_C_SECONDS)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
        assert runner.wait(STOP_SECONDS) == 0
    finally:
        _stop(runner)


def test_a_run_after_a_killed_one_starts_and_stops_its_postgresql(tmp_path: Path) -> None:
    port = free_port()
    killed = _start_runner(tmp_path, port)
    try:
        _wait_until_up(killed, tmp_path)
        children = psutil.Process(killed.pid).children(recursive=True)
        for process in [psutil.Process(killed.pid), *children]:
            process.kill()
        killed.wait(STOP_SECONDS)
        assert not _running_after(children, STOP_SECONDS)
    finally:
        _stop(killed)
    assert _postgres_of(tmp_path), "PostgreSQL, not a child of the runner, outlives it"
    # A run killed while it started leaves its registration with pgserver, which then kept the
    # server running after every later run, believing that process still used it.
    registrations = tmp_path / "postgres" / ".handle_pids.json"
    gone = _a_finished_pid()
    registrations.write_text(json.dumps([*json.loads(registrations.read_text()), gone]))

    port = free_port()
    runner = _start_runner(tmp_path, port)
    try:
        _wait_until_up(runner, tmp_path)
        assert _serving(port)
        started = _started_by(runner, tmp_path)
        runner.send_signal(signal.SIGINT)
        alive = _running_after(started, CTRL_C_SECONDS)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
        assert runner.wait(STOP_SECONDS) == 0
    finally:
        _stop(runner)


def _runner_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "GATEWAY_PORT": str(port)}
    for name in ("CRED_DATABASE_URL", "DYNAMODB_ENDPOINT_URL", "JWT_SECRET"):
        env.pop(name, None)
    return env


def _start_runner(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with (data_dir / "runner.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dev.stack"],
            cwd=REPO, env=_runner_env(data_dir, port), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_until_up(runner: subprocess.Popen[bytes], data_dir: Path) -> None:
    """Until the runner says the stack is up, as a person at the terminal sees it."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while "Ctrl-C stops everything." not in (data_dir / "runner.log").read_text():
        assert runner.poll() is None, "the stack exited while starting"
        assert time.monotonic() < deadline, "the stack did not come up"
        time.sleep(0.2)


def _started_by(runner: subprocess.Popen[bytes], data_dir: Path) -> list[psutil.Process]:
    """The runner's processes and PostgreSQL's (pg_ctl daemonizes it: found by data dir)."""
    postgres = _postgres_of(data_dir)
    backends = [child for server in postgres for child in server.children(recursive=True)]
    return [*psutil.Process(runner.pid).children(recursive=True), *postgres, *backends]


def _running_after(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those still running `seconds` from now, or as soon as none is. A zombie has exited: init
    reaps a daemon's (PostgreSQL's) whenever it gets to it."""
    deadline = time.monotonic() + seconds
    while (running := [p for p in processes if _is_running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _a_finished_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def _stop(runner: subprocess.Popen[bytes]) -> None:
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
