"""`marketsync sync start --watch`'s bar, given a sync log with the catalogue's size or without."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from marketsync_cli.app import show_sync, sync_progress


class Clock:
    """The bar's time, moved by hand: rich estimates the time remaining from it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sync_log(fetched: int, **fields: Any) -> dict[str, Any]:
    return {
        "status": "running", "items_fetched": fetched, "items_written": fetched,
        "items_unchanged": 0, "items_failed": 0, **fields,
    }  # fmt: skip


class Bar:
    """One watched sync's bar, rendered as text."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.console = Console(file=io.StringIO(), width=160, color_system=None)
        self.progress = sync_progress(self.console, get_time=self.clock)
        self.task = self.progress.add_task("queued", total=None, counts="", rate="")

    def show(self, log: dict[str, Any], at: float) -> str:
        self.clock.now = at
        show_sync(self.progress, self.task, log, rate="")
        self.console.file = io.StringIO()
        self.console.print(self.progress.get_renderable())
        return self.console.file.getvalue()


def test_without_the_catalogue_size_the_bar_pulses_with_the_counts_and_no_eta() -> None:
    bar = Bar()
    bar.show(sync_log(50), at=0)
    shown = bar.show(sync_log(150), at=10)

    assert "150 fetched, 150 written, 0 unchanged, 0 failed" in shown
    assert "ETA" not in shown and " of " not in shown
    assert bar.progress.tasks[0].total is None


def test_once_the_size_is_known_the_bar_fills_towards_it_with_the_time_remaining() -> None:
    bar = Bar()
    bar.show(sync_log(0), at=0)
    bar.show(sync_log(100, items_total=500), at=1)
    shown = bar.show(sync_log(200, items_total=500), at=11)

    assert "200 of 500 fetched, 200 written, 0 unchanged, 0 failed" in shown
    # 100 items in 10 s: the 300 left take 30 s.
    assert "ETA 0:00:30" in shown
    task = bar.progress.tasks[0]
    assert (task.completed, task.total) == (200, 500)


def test_a_size_of_zero_is_a_known_size() -> None:
    shown = Bar().show(sync_log(0, items_total=0, status="succeeded"), at=0)

    assert "0 of 0 fetched" in shown
