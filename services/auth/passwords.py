"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes, so the password is first reduced to the base64 of its SHA-256
(44 bytes, no NUL): every character of a long passphrase counts. A login for an unknown email
is compared against a dummy hash of the same cost, so both answers take the same time.

At most as many hashes run at once as the process has CPUs to run them: in Kubernetes that is
the pod's CPU limit, not the node's cores. More would only take CPU from every other request
(20 concurrent logins on a 1-CPU pod sized for the node raised an unrelated read's p99 by 44%)
without making any login faster. Hashes keep at most HASHING_SHARE of those CPUs busy, and run
in threads of the lowest scheduling priority (nice 19, set per thread on Linux): a hash takes
tens to hundreds of milliseconds of CPU whenever it gets it, while a read waiting behind one
misses its latency, so reads and session checks go first and logins queue for the CPU left to
them. In a 1-CPU cgroup like the auth pod's, 20 logins always under way had the kernel throttle
the process in most 100 ms periods, and GetMe's p99 went from 3 ms to 30-40 ms whether hashes
were sized from the node or the pod; with hashes at half the CPU, throttling mostly stopped,
p99 stayed at 6-22 ms and more logins got through (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bcrypt

from services.auth.metrics import PASSWORD_HASH_SECONDS

DEFAULT_ROUNDS = 12
CGROUP_ROOT = Path("/sys/fs/cgroup")
LOWEST_PRIORITY = 19
# Of each usable CPU, the share hashes may keep busy: a CPU a hash ran on rests as long as the
# hash took before the next one starts there. Under a pod's CPU quota, hashes that used all of
# it would have the kernel throttle the whole pod, reads included, until the next period;
# priorities cannot help there, and on shared cores (hyperthreads) neither can they help a read
# running beside a hash.
HASHING_SHARE = 0.5


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may keep busy: its CPU affinity, capped by its cgroup's CPU quota
    rounded up (1.5 CPUs: 2), at least 1.

    In a container `cgroup_root` is the container's own cgroup (a cgroup namespace on v2, a
    bind mount on v1), so its files hold the pod's limit.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity to read
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def _cgroup_quota(root: Path) -> int | None:
    """The CPU quota in whole CPUs, rounded up; None without one or without readable files."""
    try:
        if (root / "cpu.max").exists():  # cgroup v2: "<quota> <period>", quota "max" if none
            quota, period = (root / "cpu.max").read_text().split()
        else:  # cgroup v1: the quota is -1 if none
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text()
        if quota.strip() in ("max", "-1"):
            return None
        return -(-int(quota) // int(period))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _lower_this_threads_priority() -> None:
    """Linux schedules threads one by one: PRIO_PROCESS of a thread id is that thread alone.
    Lowering one's own priority needs no privilege; where it is refused, hashes still work."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


class PasswordHasher:
    def __init__(self, rounds: int = DEFAULT_ROUNDS) -> None:
        self._rounds = rounds
        self._dummy_hash = self._hash_now(secrets.token_urlsafe(16))
        # bcrypt is CPU-bound: more hashes at once than usable CPUs only make every login, and
        # every other request, slower.
        cpus = usable_cpus()
        self._hashing = ThreadPoolExecutor(
            cpus, thread_name_prefix="bcrypt", initializer=_lower_this_threads_priority
        )
        self._cpu = asyncio.Semaphore(cpus)

    def _hash_now(self, password: str) -> str:
        return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(self._rounds)).decode("ascii")

    async def hash(self, password: str) -> str:
        hashed: str = await self._run(self._hash_now, password)
        return hashed

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True if the password matches; None (no such user) costs the same and is False."""
        candidate = self._dummy_hash if password_hash is None else password_hash
        matches: bool = await self._run(
            bcrypt.checkpw, _prehash(password), candidate.encode("ascii")
        )
        return matches and password_hash is not None

    async def _run(self, work: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        await self._cpu.acquire()
        try:
            with PASSWORD_HASH_SECONDS.time():
                result, cpu_seconds = await loop.run_in_executor(
                    self._hashing, _on_cpu_clock, work, *args
                )
        except BaseException:
            self._cpu.release()
            raise
        # The answer goes now; the CPU it used rests as long again before the next hash.
        loop.call_later(cpu_seconds * (1 - HASHING_SHARE) / HASHING_SHARE, self._cpu.release)
        return result


def _on_cpu_clock(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """The work's answer and the CPU time this thread spent on it (bcrypt runs without the GIL,
    in this thread)."""
    started = time.thread_time()
    result = work(*args)
    return result, time.thread_time() - started
