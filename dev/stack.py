"""The whole stack on one machine, for `make run` and the integration tests.

Starts what the environment does not already provide: an embedded PostgreSQL (pgserver, data in
the data directory), an embedded DynamoDB server (moto), the sandbox marketplace, then auth,
catalog and sync, then Envoy. Every setting already in the environment wins; generated dev keys
are kept in the data directory so tokens and stored credentials survive a restart. The service
key pairs are always the data directory's: one variable cannot hold each service's own key.
Each process gets only its own private keys (`Stack.private_env`); public keys are shared.
Every listener binds loopback only. Each child's output is relayed line by line, tagged with
its name. Each service and Envoy get a metrics port of their own; `DATA_DIR/endpoints.json` names
every process's addresses (no secrets), so tools and tests find them without parsing logs.
A child that dies is started again after a backoff (as compose's `on-failure` would), so a local
fault test does not take the stack down. SIGINT or SIGTERM stops all of them and PostgreSQL at
once, within 5 s, and nothing is left running. One run at a time has a data directory: a
second refuses, naming the first.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
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
from typing import IO, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from marketsync.backoff import Backoff
from marketsync.identity import EDDSA, HS256
from marketsync.keys import private_key_from_text, private_key_text, public_key_text

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
STOP_TIMEOUT_SECONDS = 15.0
# Stopping the stack: every child gets STACK_STOP_SECONDS after SIGTERM, then SIGKILL; PostgreSQL,
# stopped meanwhile, POSTGRES_STOP_SECONDS for a fast shutdown and half a second for an immediate
# one. Ctrl-C promises 5 s; a busy machine needs the margin (the services and moto alone take up
# to 2 s to exit).
STACK_STOP_SECONDS = 2.5
POSTGRES_STOP_SECONDS = 1.5
# A crashed child waits 1, 2, 4 ... up to 30 s before each restart; a child that then runs for
# a minute starts the count over. Nobody else restarts it, so no jitter.
RESTART_BACKOFF = Backoff(base_seconds=1.0, cap_seconds=30.0, jitter=0.0)
STABLE_RUN_SECONDS = 60.0

log = logging.getLogger("devstack")


# Ports are picked below the range the kernel takes outgoing connections' local ports from:
# a port from that range, free when picked, can be taken by any connection made before the
# server binds it (auth's own database connections did, once).
LOWEST_PICKED_PORT = 10000
_OUTGOING_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_picked_ports: set[int] = set()


def free_port() -> int:
    """A port nothing on 127.0.0.1 listens on, never the same twice in one process."""
    try:
        first_outgoing = int(_OUTGOING_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_outgoing = 32768  # Linux's default
    while True:
        port = secrets.choice(range(LOWEST_PICKED_PORT, first_outgoing))
        if port in _picked_ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _picked_ports.add(port)
        return port


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
    argv: list[str]
    extra_env: Mapping[str, str]
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0

    def stop(self) -> None:
        self.terminate()
        self.wait(time.monotonic() + STOP_TIMEOUT_SECONDS)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        """Wait for it to exit until `deadline` (time.monotonic), then kill it."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.relay.join(timeout=max(0.1, deadline - time.monotonic()))


class LogSink(Protocol):
    """Where the children's output goes: the console, or what a test or the bench keeps of it."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def _relay(name: str, stream: IO[bytes], sink: LogSink) -> None:
    tag = f"{name:<8}| "
    for raw in iter(stream.readline, b""):
        sink.write(tag + raw.decode("utf-8", "replace"))
        sink.flush()


@dataclass
class Stack:
    """Processes started for one run; `env` is what every service was given, `private_env` the
    private keys only the named process was given, on top."""

    data_dir: Path
    env: dict[str, str]
    private_env: dict[str, dict[str, str]] = field(default_factory=dict)
    log_sink: LogSink = sys.stdout
    children: list[Child] = field(default_factory=list)
    # The data directory of the PostgreSQL this stack runs itself, if it runs one.
    postgres_data: Path | None = None
    # What `endpoints.json` says: each process's addresses, by name.
    endpoints: dict[str, Any] = field(default_factory=dict)

    def env_of(self, name: str) -> dict[str, str]:
        """The environment of the named process (auth, catalog, sync, scheduler)."""
        return {**self.env, **self.private_env.get(name, {})}

    def service_key(self, name: str) -> Ed25519PrivateKey:
        """A calling service's private key, for tests that call internal RPCs as that service."""
        return private_key_from_text(self.private_env[name]["SERVICE_PRIVATE_KEY"])

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def endpoints_file(self) -> Path:
        return self.data_dir / "endpoints.json"

    def write_endpoints(self) -> None:
        self.endpoints_file.write_text(json.dumps(self.endpoints, indent=2) + "\n")

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
            # Its own process group: the terminal's Ctrl-C reaches only us, and we stop the
            # children in parallel. Not its own session: Linux schedules each session as one
            # group (autogroup), and a service in a group of its own would weigh as much as the
            # whole rest of the stack, so auth's hashes at the lowest priority took whole CPUs
            # from Envoy and the other services (60 ms runnable waits, seen with perf sched).
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        relay = threading.Thread(
            target=_relay, args=(name, process.stdout, self.log_sink), daemon=True
        )
        relay.start()
        child = Child(name, process, relay, argv, dict(extra_env or {}))
        self.children.append(child)
        return child

    def restart(self, child: Child) -> Child:
        """Start a child again in its place, as it was first started."""
        child.stop()
        fresh = self.spawn(child.name, child.argv, child.extra_env)
        self.children.remove(fresh)
        self.children[self.children.index(child)] = fresh
        fresh.restarts = child.restarts + 1
        return fresh

    def stop(self) -> None:
        """Stop every child and PostgreSQL at once. Stopping means now: what PostgreSQL's fast
        shutdown cuts short in a service's last moments, the sync queue's leases recover."""
        deadline = time.monotonic() + STACK_STOP_SECONDS
        stopping_postgres = None
        if self.postgres_data is not None:
            stopping_postgres = threading.Thread(target=stop_postgres, args=(self.postgres_data,))
            stopping_postgres.start()
            self.postgres_data = None
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.wait(deadline)
        self.children.clear()
        if stopping_postgres is not None:
            stopping_postgres.join()


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
    defaults: dict[str, str | Callable[[], str]] = {
        "PRODUCTS_TABLE_NAME": "MarketplaceSyncStack-ProductsTable",
        "AWS_REGION": "us-east-1",
        "GATEWAY_PORT": "8080",
        # The REST contract's mode; JWT_ALGORITHM=EdDSA runs the stack as Kubernetes does.
        "JWT_ALGORITHM": HS256,
        "CREDENTIALS_ENCRYPTION_KEY": lambda: _dev_secret(
            data_dir,
            "credentials_encryption_key",
            lambda: "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        ),
        "PYTHONUNBUFFERED": "1",
        # The services listen on loopback only: nothing on the network reaches a laptop's stack.
        "GRPC_HOST": "127.0.0.1",
        # The local stack runs the scheduler inside sync; Kubernetes uses a CronJob instead.
        "SYNC_SCHEDULE_INTERVAL_SECONDS": "3600",
    }
    for name, default in defaults.items():
        if not env.get(name):
            env[name] = default() if callable(default) else default
    if env["JWT_ALGORITHM"] == HS256 and not env.get("JWT_SECRET"):
        env["JWT_SECRET"] = _dev_secret(data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48))
    return env


# The services that call internal RPCs, each with a key pair of its own. Auth calls no other
# service, so it signs no service credential.
CALLERS = ("catalog", "sync", "scheduler")


def _dev_key(data_dir: Path, name: str) -> Ed25519PrivateKey:
    text = _dev_secret(data_dir, name, lambda: private_key_text(Ed25519PrivateKey.generate()))
    return private_key_from_text(text)


def _private_env(data_dir: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Put the public keys in `env`, shared by every process, and answer each process's private
    keys: a caller's own service key, and auth alone the key that signs user tokens."""
    service_keys = {name: _dev_key(data_dir, f"{name}_service_key") for name in CALLERS}
    env.pop("SERVICE_PRIVATE_KEY", None)
    env["SERVICE_PUBLIC_KEYS"] = ",".join(
        f"{name}:{public_key_text(key.public_key())}" for name, key in service_keys.items()
    )
    private = {
        name: {"SERVICE_PRIVATE_KEY": private_key_text(key)} for name, key in service_keys.items()
    }
    user_token_key = env.pop("JWT_PRIVATE_KEY", "")
    if env["JWT_ALGORITHM"] == EDDSA:
        if not user_token_key:
            user_token_key = private_key_text(_dev_key(data_dir, "jwt_private_key"))
        if not env.get("JWT_PUBLIC_KEYS"):
            public_key = private_key_from_text(user_token_key).public_key()
            env["JWT_PUBLIC_KEYS"] = public_key_text(public_key)
        private["auth"] = {"JWT_PRIVATE_KEY": user_token_key}
    return private


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
            status: int = answer.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def new_stack(
    data_dir: Path, overrides: Mapping[str, str] | None = None, log_sink: LogSink = sys.stdout
) -> Stack:
    """A stack whose settings and keys are ready, nothing started yet."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _base_env(data_dir, overrides or {})
    return Stack(
        data_dir=data_dir, env=env, private_env=_private_env(data_dir, env), log_sink=log_sink
    )


def start_stack(
    data_dir: Path, overrides: Mapping[str, str] | None = None, log_sink: LogSink = sys.stdout
) -> Stack:
    stack = new_stack(data_dir, overrides, log_sink)
    try:
        _start_backends(stack)
        _start_services(stack)
        stack.write_endpoints()
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_backends(stack: Stack) -> None:
    env = stack.env
    if not env.get("CRED_DATABASE_URL"):
        stack.postgres_data = stack.data_dir / "postgres"
        env["CRED_DATABASE_URL"] = start_postgres(stack.postgres_data)
    stack.endpoints["postgres"] = without_password(env["CRED_DATABASE_URL"])
    if not env.get("DYNAMODB_ENDPOINT_URL"):
        port = free_port()
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        stack.spawn("dynamodb", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        _wait_until(lambda: _port_open(port), "the embedded DynamoDB server", 30, stack)
        env["DYNAMODB_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        env.setdefault("CREATE_PRODUCTS_TABLE", "true")
    stack.endpoints["dynamodb"] = env["DYNAMODB_ENDPOINT_URL"]
    sandbox_settings = ("AMAZON_SP_API_ENDPOINT", "AMAZON_LWA_TOKEN_URL", "WALMART_API_BASE_URL")
    if not all(env.get(name) for name in sandbox_settings):
        port = free_port()
        stack.spawn("sandbox", [PYTHON, "-m", "dev.sandbox", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        _wait_until(lambda: _port_open(port), "the sandbox marketplace", 30, stack)
        env.setdefault("AMAZON_SP_API_ENDPOINT", url)
        env.setdefault("AMAZON_LWA_TOKEN_URL", f"{url}/auth/o2/token")
        env.setdefault("WALMART_API_BASE_URL", url)
    stack.endpoints["sandbox"] = env["WALMART_API_BASE_URL"]


SERVICES = ("auth", "catalog", "sync")


def _start_services(stack: Stack) -> None:
    ports = {
        name: int(stack.env.get(f"{name.upper()}_GRPC_PORT") or free_port()) for name in SERVICES
    }
    for name, port in ports.items():
        stack.env[f"{name.upper()}_ADDRESS"] = f"127.0.0.1:{port}"
    for name in SERVICES:
        metrics_port = int(stack.env.get(f"{name.upper()}_METRICS_PORT") or free_port())
        stack.spawn(
            name,
            [PYTHON, "-m", f"services.{name}.server"],
            {
                "GRPC_PORT": str(ports[name]),
                "METRICS_PORT": str(metrics_port),
                **stack.private_env.get(name, {}),
            },
        )
        stack.endpoints[name] = {
            "grpc": stack.env[f"{name.upper()}_ADDRESS"],
            "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
        }
    upstreams = {name: stack.env[f"{name.upper()}_ADDRESS"] for name in SERVICES}
    stats_port = int(stack.env.get("GATEWAY_STATS_PORT") or free_port())
    spawn_gateway(stack, "gateway", int(stack.env["GATEWAY_PORT"]), upstreams, stats_port)
    stack.endpoints["gateway"] = {
        "http": stack.gateway_url,
        "metrics": f"http://127.0.0.1:{stats_port}/stats/prometheus",
    }
    _wait_until(
        lambda: _http_ok(f"{stack.gateway_url}/healthz"), "the gateway's /healthz", 90, stack
    )


def start_postgres(pgdata: Path) -> str:
    """Start (or adopt) pgserver's PostgreSQL in `pgdata` and answer its URL. `stop_postgres`
    stops it, not pgserver.

    pgserver stops a server only when the last process in its `.handle_pids.json` lets go, so
    one killed run, listed forever, kept the server alive after every later run. This process
    takes itself off that list and off pgserver's exit hook at once, and drops what killed runs
    left: their entries, and a `postmaster.pid` of a dead server (pgserver takes any process
    with its pid, which may have been reused since, for the server).
    """
    # pgserver logs every command it runs, output included, and warns about a platformdirs
    # fallback that does not matter here.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
    from pgserver.postgres_server import get_server
    from pgserver.utils import DiskList

    postmaster_pid = _postmaster_pid(pgdata)
    if postmaster_pid is not None and not _serves(postmaster_pid, pgdata):
        log.info("removing the postmaster.pid of a PostgreSQL that is gone")
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
    registrations = DiskList(pgdata / ".handle_pids.json")
    if registrations.path.exists():
        registrations.put([pid for pid in registrations.get() if _running(pid)])
    server = get_server(pgdata, cleanup_mode=None)
    atexit.unregister(server._cleanup)
    registrations.get_and_remove(os.getpid())
    return server.get_uri()


def stop_postgres(pgdata: Path) -> None:
    """A fast shutdown (clients disconnected), or an immediate one when that takes longer than
    POSTGRES_STOP_SECONDS: pgserver's own stop may wait a minute."""
    pid = _postmaster_pid(pgdata)
    if pid is None or not _serves(pid, pgdata):
        return
    for signum, seconds in ((signal.SIGINT, POSTGRES_STOP_SECONDS), (signal.SIGQUIT, 0.5)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + seconds
        while _serves(pid, pgdata) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _serves(pid, pgdata):
            return
    log.error("PostgreSQL (pid %s) ignored SIGQUIT; killing it", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid on the first line of `postmaster.pid`, None without one."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def _serves(pid: int, pgdata: Path) -> bool:
    """Whether `pid` runs the PostgreSQL server of `pgdata` (pg_ctl names the directory on its
    command line), rather than having exited or being another process that got its pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return _running(pid) and os.fsencode(pgdata.resolve()) in argv


def _running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (init reaps a server pg_ctl started
    whenever it gets to it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return not stat.rpartition(") ")[2].startswith("Z")


def spawn_gateway(
    stack: Stack,
    name: str,
    port: int,
    upstreams: Mapping[str, str],
    stats_port: int | None = None,
) -> Child:
    """Envoy on loopback `port` in front of the services at `upstreams` (auth, catalog, sync
    by name), its configuration rendered into the data directory; its Prometheus stats on
    `stats_port` (a free port when None)."""
    config = stack.data_dir / f"{name}-envoy.json"
    subprocess.run(  # noqa: S603
        [
            PYTHON, "-m", "gateway.envoy_config", str(config),
            "--listen-host", "127.0.0.1",
            "--port", str(port),
            "--admin-port", str(free_port()),
            "--stats-port", str(stats_port or free_port()),
            "--descriptor", str(REPO / "gateway" / "descriptor.pb"),
            *(f"--{service}={address}" for service, address in upstreams.items()),
        ],
        cwd=REPO, env=stack.env, check=True,
    )  # fmt: skip
    # No hot restart: it binds a machine-wide domain socket, so two stacks could not coexist.
    envoy = [str(BIN / "envoy"), "-c", str(config), "--log-level", "warn", "--disable-hot-restart"]
    return stack.spawn(name, envoy)


def claim_data_dir(data_dir: Path) -> IO[str]:
    """Lock `data_dir` for this run until the process ends, however it ends; exit naming the
    run that holds it already. Keep the answer open for as long as the run lasts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "devstack.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise SystemExit(
            f"{data_dir} is in use by another `make run` (pid {holder}). Stop that one first "
            "(Ctrl-C where it runs), or give this one a data directory of its own: "
            "DATA_DIR=/some/dir make run"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _interrupt(signum: int, frame: object) -> None:
    """The first SIGINT or SIGTERM interrupts the start; later ones must not cut the stop short."""
    _ignore_stop_signals()
    raise KeyboardInterrupt


def _ignore_stop_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="devstack| %(message)s")
    data_dir = Path(os.environ.get("DATA_DIR", REPO / ".data"))
    claim = claim_data_dir(data_dir)
    # Until the stack is up, Ctrl-C interrupts the start itself, which stops what had started.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
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
        _ignore_stop_signals()
        if stack is not None:
            log.info("stopping")
            stack.stop()
        log.info("stopped")
        claim.close()


def _serve_until_stopped(stack: Stack, stopping: threading.Event) -> None:
    log.info("%s", banner(stack))
    restart_at: dict[str, float] = {}
    while not stopping.wait(0.5):
        for child in list(stack.children):
            if child.process.poll() is None:
                continue
            now = time.monotonic()
            if child.name not in restart_at:
                if now - child.started_at >= STABLE_RUN_SECONDS:
                    child.restarts = 0
                delay = RESTART_BACKOFF.delay(child.restarts)
                restart_at[child.name] = now + delay
                log.error(
                    "%s exited with %s; restarting it in %.0f s",
                    child.name, child.process.returncode, delay,
                )  # fmt: skip
            elif now >= restart_at[child.name]:
                del restart_at[child.name]
                stack.restart(child)
                log.info("%s restarted", child.name)


def banner(stack: Stack) -> str:
    """What a person needs once the stack is up: where to go, what to watch, how to get in."""
    url = stack.gateway_url
    metrics = {
        name: addresses["metrics"]
        for name, addresses in stack.endpoints.items()
        if isinstance(addresses, dict) and "metrics" in addresses
    }
    register = json.dumps(
        {"email": "you@example.com", "password": "choose-a-password", "name": "You",
         "organization_name": "My shop"}
    )  # fmt: skip
    cli = BIN / "marketsync"  # the command-line client, a console script of this project
    return "\n".join(
        [
            "Marketplace Sync is up. Ctrl-C stops everything.",
            f"  REST gateway   {url}",
            f"  API docs       {url}/docs",
            *(f"  metrics        {name:<8} {address}" for name, address in metrics.items()),
            f"  every address  {stack.endpoints_file}",
            f"  sign up        curl -s {url}/api/auth/register -H 'content-type: application/json'"
            f" -d '{register}'",
            f"  log in         {cli} --url {url} login --email you@example.com",
        ]
    )


def without_password(conninfo: str) -> str:
    """A connection string as it may be shown: the password left out."""
    fields = conninfo_to_dict(conninfo)
    fields.pop("password", None)
    return make_conninfo("", **fields)


if __name__ == "__main__":
    main()
