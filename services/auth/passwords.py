"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes, so the password is first reduced to the base64 of its SHA-256
(44 bytes, no NUL): every character of a long passphrase counts. A login for an unknown email
is compared against a dummy hash of the same cost, so both answers take the same time.

One hash runs at a time, and hashes keep at most half of one CPU busy (less in a pod whose CPU
quota is under one CPU), in a thread of the lowest scheduling priority (nice 19, set per thread
on Linux) held on one CPU. A hash is one uninterruptible burst of CPU (about 0.2 s at cost 12),
and requests served beside it slow down: on 2 cores, 20 logins always under way raised GetMe's
p99 by 36-78% with one hash per CPU, each CPU resting half the time, by 18-45% one at a time on
half a CPU (2.2 logins a second at cost 12, 8,000 an hour a replica), and by 10-32% (median
22% over fourteen runs) with that thread held on one CPU. Its priority (nice 19, nice 0,
SCHED_IDLE), EEVDF's shortest slice, a worker process or auth's other threads kept off its CPU
changed nothing beyond the noise; cheap hashes at the same login rate added nothing.
Logins queue for the CPU left to them; more login capacity comes from more replicas. Under a
1-CPU quota like the auth pod's, hashes that used the whole quota had the kernel throttle the
process, reads included, in most 100 ms periods, and GetMe's p99 went from 3 ms to 30-40 ms;
resting as long as each hash took mostly stopped the throttling (BENCHMARKS.md).

bcrypt rather than Argon2id: Argon2id at OWASP's parameters takes a thirteenth of the CPU, but
streams through 19 MiB each time, and on 2 cores busy a tenth of the time it doubled GetMe's
p99 where bcrypt, whose state fits the L1 cache, added 6% (BENCHMARKS.md).
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
# The CPU hashes may keep busy, in CPUs: after each hash its CPU rests so that hashes use no more
# on average. Under a pod's CPU quota, hashes that used all of it would have the kernel throttle
# the whole pod, reads included, until the next period; priorities cannot help there.
HASHING_CPUS = 0.5


def hashing_cpus(cgroup_root: Path = CGROUP_ROOT) -> float:
    """The CPU hashes may keep busy: HASHING_CPUS, or that share of the cgroup's CPU quota when
    the quota is under one CPU (a 500m pod: a quarter of a CPU).

    In a container `cgroup_root` is the container's own cgroup (a cgroup namespace on v2, a
    bind mount on v1), so its files hold the pod's limit.
    """
    quota = cpu_quota(cgroup_root)
    return HASHING_CPUS * min(1.0, quota if quota is not None else 1.0)


def cpu_quota(root: Path) -> float | None:
    """The cgroup's CPU quota in CPUs; None without one or without readable files."""
    try:
        if (root / "cpu.max").exists():  # cgroup v2: "<quota> <period>", quota "max" if none
            quota, period = (root / "cpu.max").read_text().split()
        else:  # cgroup v1: the quota is -1 if none
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text()
        if quota.strip() in ("max", "-1"):
            return None
        cpus = int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return cpus if cpus > 0 else None


def _set_up_the_hashing_thread() -> None:
    _lower_this_threads_priority()
    _keep_this_thread_on_one_cpu()


def _lower_this_threads_priority() -> None:
    """Linux schedules threads one by one: PRIO_PROCESS of a thread id is that thread alone.
    Lowering one's own priority needs no privilege; where it is refused, hashes still work."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


def _keep_this_thread_on_one_cpu() -> None:
    """Held on one CPU, the same hashes cost reads served beside them less than left free to
    move (on 2 cores, GetMe's p99 during logins rose by a median 22% against 31%; BENCHMARKS.md).
    The CPU is one the process may use, picked at random so that replicas on one node hash on
    different CPUs. Where affinity cannot be set, hashes still work."""
    with contextlib.suppress(AttributeError, OSError):
        cpu = secrets.choice(sorted(os.sched_getaffinity(0)))
        os.sched_setaffinity(threading.get_native_id(), {cpu})


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


class PasswordHasher:
    def __init__(self, rounds: int = DEFAULT_ROUNDS) -> None:
        self._rounds = rounds
        self._dummy_hash = self._hash_now(secrets.token_urlsafe(16))
        self._share = hashing_cpus()
        self._hashing = ThreadPoolExecutor(
            1, thread_name_prefix="bcrypt", initializer=_set_up_the_hashing_thread
        )
        self._cpu = asyncio.Lock()

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
        with PASSWORD_HASH_SECONDS.time():
            await self._cpu.acquire()
            try:
                result, cpu_seconds = await loop.run_in_executor(
                    self._hashing, _on_cpu_clock, work, *args
                )
            except BaseException:
                self._cpu.release()
                raise
        # The answer goes now; the CPU rests before the next hash, so hashes use no more than
        # their share of it.
        loop.call_later(cpu_seconds * (1 - self._share) / self._share, self._cpu.release)
        return result


def _on_cpu_clock(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """The work's answer and the CPU time this thread spent on it (bcrypt runs without the GIL,
    in this thread)."""
    started = time.thread_time()
    result = work(*args)
    return result, time.thread_time() - started
