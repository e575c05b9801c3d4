"""How many passwords auth hashes at once: the CPUs its pod may use, read from fake cgroup
files here."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from services.auth import passwords
from services.auth.passwords import PasswordHasher, usable_cpus

NODE_CPUS = 8


@pytest.fixture(autouse=True)
def node_of_eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(NODE_CPUS)))


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def cgroup_v1(root: Path, quota_us: str, period_us: str = "100000") -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota_us + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period_us + "\n")
    return root


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [
        ("100000 100000", 1),
        ("150000 100000", 2),
        ("50000 100000", 1),
        ("400000 100000", 4),
        ("1600000 100000", NODE_CPUS),
        ("max 100000", NODE_CPUS),
    ],
)
def test_a_cgroup_v2_quota_caps_the_cpus_rounded_up(
    tmp_path: Path, cpu_max: str, cpus: int
) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, cpu_max)) == cpus


@pytest.mark.parametrize(
    ("quota_us", "period_us", "cpus"),
    [
        ("100000", "100000", 1),
        ("250000", "100000", 3),
        ("50000", "50000", 1),
        ("-1", "100000", NODE_CPUS),
    ],
)
def test_a_cgroup_v1_quota_caps_the_cpus_rounded_up(
    tmp_path: Path, quota_us: str, period_us: str, cpus: int
) -> None:
    assert usable_cpus(cgroup_v1(tmp_path, quota_us, period_us)) == cpus


@pytest.mark.parametrize("cpu_max", ["", "garbage", "100000", "100000 0"])
def test_unreadable_cgroup_files_leave_the_cpu_count(tmp_path: Path, cpu_max: str) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, cpu_max)) == NODE_CPUS


def test_without_cgroup_files_the_cpu_affinity_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert usable_cpus(tmp_path) == NODE_CPUS
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert usable_cpus(tmp_path) == 1


class OverlapCountingHasher(PasswordHasher):
    """Hashes slowly enough to overlap, counting how many hashes run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        super().__init__(rounds=4)

    def _hash_now(self, password: str) -> str:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)
            return super()._hash_now(password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize("cpus", [1, 3])
def test_no_more_hashes_run_at_once_than_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int
) -> None:
    monkeypatch.setattr(passwords, "usable_cpus", lambda: cpus)
    hasher = OverlapCountingHasher()

    async def hash_many() -> None:
        await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(2 * cpus + 1)))

    asyncio.run(hash_many())
    assert hasher.most_at_once == cpus


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have priorities on Linux")
def test_hashes_run_at_the_lowest_priority_and_requests_keep_theirs() -> None:
    priorities: list[int] = []

    class PriorityNotingHasher(PasswordHasher):
        def _hash_now(self, password: str) -> str:
            priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super()._hash_now(password)

    hasher = PriorityNotingHasher(rounds=4)
    priorities.clear()  # its dummy hash, made as it starts
    asyncio.run(hasher.hash("a password"))
    assert priorities == [passwords.LOWEST_PRIORITY]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(
        os.PRIO_PROCESS, 0
    ), "the caller's thread keeps its priority"


def test_a_cpu_rests_after_a_hash_as_long_as_the_hash_kept_it_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(passwords, "usable_cpus", lambda: 1)
    spans: list[tuple[float, float, float]] = []  # (started, ended, CPU seconds)

    class BusyHasher(PasswordHasher):
        def _hash_now(self, password: str) -> str:
            started, cpu_started = time.monotonic(), time.thread_time()
            while time.thread_time() - cpu_started < 0.05:
                pass  # CPU-bound, as bcrypt is
            spans.append((started, time.monotonic(), time.thread_time() - cpu_started))
            return password

    hasher = BusyHasher(rounds=4)
    spans.clear()  # its dummy hash, made as it starts

    async def two_at_once() -> None:
        await asyncio.gather(hasher.hash("first"), hasher.hash("second"))

    asyncio.run(two_at_once())
    (_, first_ended, first_cpu), (second_started, _, _) = sorted(spans)
    rest = first_cpu * (1 - passwords.HASHING_SHARE) / passwords.HASHING_SHARE
    assert second_started - first_ended >= rest * 0.95, "the CPU rested before the next hash"
