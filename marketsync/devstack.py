"""The whole stack on one machine, for `make run` and the integration tests.

Starts what the environment does not already provide: an embedded PostgreSQL (pgserver, data in
the data directory), an embedded DynamoDB server (moto), the sandbox marketplace, then auth,
catalog and sync, then Envoy. Every setting already in the environment wins; generated dev keys
are kept in the data directory so tokens and stored credentials survive a restart. Each child's
output is relayed line by line, tagged with its name. SIGINT or SIGTERM stops all of them,
newest first, and nothing is left running.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
STOP_TIMEOUT_SECONDS = 15.0

log = logging.getLogger("devstack")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: only a plain system call, no locks taken."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    relay: threading.Thread

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.relay.join(timeout=2)


def _relay(name: str, stream: IO[bytes], sink: TextIO) -> None:
    tag = f"{name:<8}| "
    for raw in iter(stream.readline, b""):
        sink.write(tag + raw.decode("utf-8", "replace"))
        sink.flush()


@dataclass
class Stack:
    """Processes started for one run; `env` is what the services were given."""

    data_dir: Path
    env: dict[str, str]
    log_sink: TextIO = sys.stdout
    children: list[Child] = field(default_factory=list)
    postgres: PostgresServer | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    def spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None
    ) -> Child:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            argv,
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session (Envoy dies with a shell's session otherwise), and it dies with us.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        relay = threading.Thread(
            target=_relay, args=(name, process.stdout, self.log_sink), daemon=True
        )
        relay.start()
        child = Child(name, process, relay)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.postgres is not None:
            self.postgres.cleanup()
            self.postgres = None


def _dev_secret(data_dir: Path, name: str, make: Callable[[], str]) -> str:
    path = data_dir / name
    if not path.exists():
        # Created readable by its owner only, never world-readable even for an instant.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(make())
    return path.read_text().strip()


def _base_env(data_dir: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, **overrides}
    env.pop("SP_API_DEFAULT_MARKETPLACE", None)
    defaults = {
        "PRODUCTS_TABLE_NAME": "MarketplaceSyncStack-ProductsTable",
        "AWS_REGION": "us-east-1",
        "GATEWAY_PORT": "8080",
        "JWT_SECRET": lambda: _dev_secret(
            data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48)
        ),
        "INTERNAL_SERVICE_KEY": lambda: _dev_secret(
            data_dir, "internal_service_key", lambda: secrets.token_urlsafe(48)
        ),
        "CREDENTIALS_ENCRYPTION_KEY": lambda: _dev_secret(
            data_dir,
            "credentials_encryption_key",
            lambda: "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        ),
        "PYTHONUNBUFFERED": "1",
        # The local stack runs the scheduler inside sync; Kubernetes uses a CronJob instead.
        "SYNC_SCHEDULE_INTERVAL_SECONDS": "3600",
    }
    for name, default in defaults.items():
        if not env.get(name):
            env[name] = default() if callable(default) else default
    return env


def _wait_until(check: Callable[[], bool], what: str, timeout: float, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in stack.children:
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode} while waiting for {what}"
                )
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback only
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def start_stack(
    data_dir: Path, overrides: Mapping[str, str] | None = None, log_sink: TextIO = sys.stdout
) -> Stack:
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(data_dir=data_dir, env=_base_env(data_dir, overrides or {}), log_sink=log_sink)
    try:
        _start_backends(stack)
        _start_services(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_backends(stack: Stack) -> None:
    env = stack.env
    if not env.get("CRED_DATABASE_URL"):
        # pgserver logs every command it runs, output included, and warns about a
        # platformdirs fallback that does not matter here.
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
        import pgserver

        stack.postgres = pgserver.get_server(stack.data_dir / "postgres", cleanup_mode="stop")
        env["CRED_DATABASE_URL"] = stack.postgres.get_uri()
    if not env.get("DYNAMODB_ENDPOINT_URL"):
        port = free_port()
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        stack.spawn("dynamodb", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        _wait_until(lambda: _port_open(port), "the embedded DynamoDB server", 30, stack)
        env["DYNAMODB_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        env.setdefault("CREATE_PRODUCTS_TABLE", "true")
    sandbox_settings = ("AMAZON_SP_API_ENDPOINT", "AMAZON_LWA_TOKEN_URL", "WALMART_API_BASE_URL")
    if not all(env.get(name) for name in sandbox_settings):
        port = free_port()
        stack.spawn("sandbox", [PYTHON, "-m", "marketsync.sandbox", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        _wait_until(lambda: _port_open(port), "the sandbox marketplace", 30, stack)
        env.setdefault("AMAZON_SP_API_ENDPOINT", url)
        env.setdefault("AMAZON_LWA_TOKEN_URL", f"{url}/auth/o2/token")
        env.setdefault("WALMART_API_BASE_URL", url)


SERVICES = ("auth", "catalog", "sync")


def _start_services(stack: Stack) -> None:
    ports = {
        name: int(stack.env.get(f"{name.upper()}_GRPC_PORT") or free_port()) for name in SERVICES
    }
    for name, port in ports.items():
        stack.env[f"{name.upper()}_ADDRESS"] = f"127.0.0.1:{port}"
    for name in SERVICES:
        stack.spawn(
            name, [PYTHON, "-m", f"services.{name}.server"], {"GRPC_PORT": str(ports[name])}
        )
    config = stack.data_dir / "envoy.json"
    admin_port = free_port()
    upstream_args = [f"--{name}={stack.env[f'{name.upper()}_ADDRESS']}" for name in SERVICES]
    subprocess.run(  # noqa: S603
        [
            PYTHON, "-m", "gateway.envoy_config", str(config),
            "--listen-host", "127.0.0.1",
            "--port", stack.env["GATEWAY_PORT"],
            "--admin-port", str(admin_port),
            "--descriptor", str(REPO / "gateway" / "descriptor.pb"),
            *upstream_args,
        ],
        cwd=REPO, env=stack.env, check=True,
    )  # fmt: skip
    # No hot restart: it binds a machine-wide domain socket, so two stacks could not coexist.
    envoy = [str(BIN / "envoy"), "-c", str(config), "--log-level", "warn", "--disable-hot-restart"]
    stack.spawn("gateway", envoy)
    _wait_until(
        lambda: _http_ok(f"{stack.gateway_url}/healthz"), "the gateway's /healthz", 90, stack
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="devstack| %(message)s")
    data_dir = Path(os.environ.get("DATA_DIR", REPO / ".data"))
    # Until the stack is up, Ctrl-C interrupts the start itself, which stops what had started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack: Stack | None = None
    try:
        stack = start_stack(data_dir)
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        _serve_until_stopped(stack, stopping)
    except KeyboardInterrupt:
        log.info("interrupted while starting")
    finally:
        if stack is not None:
            log.info("stopping")
            stack.stop()
        log.info("stopped")


def _serve_until_stopped(stack: Stack, stopping: threading.Event) -> None:
    summary = {
        "gateway": stack.gateway_url,
        "postgres": "embedded" if stack.postgres else "from CRED_DATABASE_URL",
        "dynamodb": stack.env["DYNAMODB_ENDPOINT_URL"],
    }
    log.info("Marketplace Sync is up: %s", json.dumps(summary))
    log.info("try: curl -s %s/healthz   (Ctrl-C stops everything)", stack.gateway_url)
    while not stopping.wait(1):
        for child in stack.children:
            if child.process.poll() is not None:
                log.error(
                    "%s exited with %s; stopping the stack", child.name, child.process.returncode
                )
                stopping.set()


if __name__ == "__main__":
    main()
