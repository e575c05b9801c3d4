"""Figures (several samples each), ratios with their goals, and how they are printed and saved.

A figure is never one measurement: every one is taken after a warm-up, at least SAMPLES times,
and shown as min / median / max. Ratios divide medians, so one slow sample cannot make one.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SAMPLES = 3
WARMUPS = 1


def progress(message: str) -> None:
    """A line on stderr, so a long run shows where it is without mixing into the figures."""
    sys.stderr.write(f"bench| {time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


def collect(
    take: Callable[[], Mapping[str, float]], samples: int = SAMPLES, warmups: int = WARMUPS
) -> dict[str, list[float]]:
    """Values by name over `samples` runs of `take`, after `warmups` runs thrown away (first
    connections, imports, caches and JIT-like warm paths of the servers)."""
    for _ in range(warmups):
        take()
    values: dict[str, list[float]] = {}
    for _ in range(samples):
        for name, value in take().items():
            values.setdefault(name, []).append(value)
    return values


@dataclass
class Figure:
    name: str
    unit: str
    samples: list[float]
    # Which DynamoDB server the catalog used, where it matters.
    backend: str = ""
    # The least this can take at the marketplaces' documented rates, in the same unit.
    floor: float | None = None
    note: str = ""

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def key(self) -> str:
        return f"{self.name}@{self.backend}" if self.backend else self.name


@dataclass(frozen=True)
class Goal:
    """What a ratio should be: at most, at least, about (within 20 %), or only reported."""

    kind: str
    bound: float = 0.0

    def met(self, value: float) -> bool | None:
        if self.kind == "<=":
            return value <= self.bound
        if self.kind == ">=":
            return value >= self.bound
        if self.kind == "~":
            return abs(value - self.bound) <= 0.2 * self.bound
        return None

    def __str__(self) -> str:
        return "reported" if self.kind == "" else f"{self.kind} {self.bound:g}"


REPORTED = Goal("")


@dataclass
class Ratio:
    name: str
    value: float
    goal: Goal
    # How it was made, from which figures' medians.
    basis: str
    met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.met = self.goal.met(self.value)


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    # Informational facts that are not samples: backends, counts, the profile's summary.
    facts: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        name: str,
        unit: str,
        samples: list[float],
        *,
        backend: str = "",
        floor: float | None = None,
        note: str = "",
    ) -> Figure:
        figure = Figure(name, unit, list(samples), backend, floor, note)
        self.figures[figure.key()] = figure
        return figure

    def median(self, name: str, backend: str = "") -> float:
        return self.figures[f"{name}@{backend}" if backend else name].median

    def has(self, name: str, backend: str = "") -> bool:
        return (f"{name}@{backend}" if backend else name) in self.figures

    def ratio(self, name: str, value: float, goal: Goal, basis: str) -> None:
        self.ratios.append(Ratio(name, value, goal, basis))

    def as_json(
        self, machine: Mapping[str, object], command: str, seconds: float
    ) -> dict[str, Any]:
        return {
            "machine": dict(machine),
            "command": command,
            "duration_s": round(seconds, 1),
            "figures": [
                {**asdict(f), "min": f.min, "median": f.median, "max": f.max}
                for f in self.figures.values()
            ],
            "ratios": [asdict(r) | {"goal": str(r.goal)} for r in self.ratios],
            "facts": self.facts,
        }


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def _verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def figure_rows(results: Results) -> list[list[str]]:
    return [
        [
            f.name,
            f.backend,
            f.unit,
            str(len(f.samples)),
            _number(f.min),
            _number(f.median),
            _number(f.max),
            "" if f.floor is None else _number(f.floor),
        ]
        for f in results.figures.values()
    ]


FIGURE_HEADER = ["figure", "backend", "unit", "n", "min", "median", "max", "floor"]
RATIO_HEADER = ["ratio", "value", "goal", "met", "from medians of"]


def ratio_rows(results: Results) -> list[list[str]]:
    return [
        [r.name, _number(r.value), str(r.goal), _verdict(r.met), r.basis] for r in results.ratios
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {
        i
        for i, name in enumerate(header)
        if name in {"n", "min", "median", "max", "floor", "value"}
    }

    def line(row: list[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
