"""How much CPU auth's password hashes may use: one at a time, on one CPU, at most half of it,
less in a pod whose CPU quota (read from fake cgroup files here) is under one CPU."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from services.auth import passwords
from services.auth.passwords import PasswordHasher, hashing_cpus


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
        ("100000 100000", 0.5),
        ("400000 100000", 0.5),
        ("max 100000", 0.5),
        ("50000 100000", 0.25),
        ("20000 100000", 0.1),
    ],
)
def test_hashes_get_half_a_cpu_or_half_a_smaller_cgroup_v2_quota(
    tmp_path: Path, cpu_max: str, cpus: float
) -> None:
    assert hashing_cpus(cgroup_v2(tmp_path, cpu_max)) == pytest.approx(cpus)


@pytest.mark.parametrize(
    ("quota_us", "period_us", "cpus"),
    [
        ("100000", "100000", 0.5),
        ("250000", "100000", 0.5),
        ("25000", "50000", 0.25),
        ("-1", "100000", 0.5),
    ],
)
def test_hashes_get_half_a_cpu_or_half_a_smaller_cgroup_v1_quota(
    tmp_path: Path, quota_us: str, period_us: str, cpus: float
) -> None:
    assert hashing_cpus(cgroup_v1(tmp_path, quota_us, period_us)) == pytest.approx(cpus)


@pytest.mark.parametrize("cpu_max", ["", "garbage", "100000", "100000 0", "0 100000"])
def test_unreadable_cgroup_files_leave_half_a_cpu(tmp_path: Path, cpu_max: str) -> None:
    assert hashing_cpus(cgroup_v2(tmp_path, cpu_max)) == passwords.HASHING_CPUS


def test_without_cgroup_files_hashes_get_half_a_cpu(tmp_path: Path) -> None:
    assert hashing_cpus(tmp_path) == passwords.HASHING_CPUS


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


def test_one_hash_runs_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hashing_cpus", lambda: 1.0)  # no rests: only overlap counts
    hasher = OverlapCountingHasher()

    async def hash_many() -> None:
        await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(5)))

    asyncio.run(hash_many())
    assert hasher.most_at_once == 1


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have affinity on Linux")
def test_hashes_stay_on_one_cpu_the_process_may_use_and_requests_keep_all_of_them() -> None:
    cpus_of_hashes: list[set[int]] = []

    class AffinityNotingHasher(PasswordHasher):
        def _hash_now(self, password: str) -> str:
            cpus_of_hashes.append(os.sched_getaffinity(threading.get_native_id()))
            return super()._hash_now(password)

    allowed = os.sched_getaffinity(0)
    hasher = AffinityNotingHasher(rounds=4)
    cpus_of_hashes.clear()  # its dummy hash, made as it starts

    async def hash_two() -> None:
        await hasher.hash("a password")
        await hasher.hash("another password")

    asyncio.run(hash_two())
    first = cpus_of_hashes[0]
    assert len(first) == 1 and first <= allowed
    assert all(cpus == first for cpus in cpus_of_hashes)
    assert os.sched_getaffinity(threading.get_native_id()) == allowed, "the caller's thread"


@pytest.mark.parametrize("share", [0.5, 0.25])
def test_the_cpu_rests_after_a_hash_so_hashes_keep_to_their_share(
    monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    monkeypatch.setattr(passwords, "hashing_cpus", lambda: share)
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
    rest = first_cpu * (1 - share) / share  # 0.5: as long as the hash; 0.25: three times
    assert second_started - first_ended >= rest * 0.95, "the CPU rested before the next hash"
