"""Start the whole stack once, take every figure, print them with their ratios and goals, and
save them (`python -m tests.bench --help`)."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from dev.stack import free_port, start_stack
from tests.bench import auth, catalog, syncs
from tests.bench.backends import bench_dir, start_dynalite
from tests.bench.figures import (
    FIGURE_HEADER,
    RATIO_HEADER,
    REPORTED,
    Goal,
    Results,
    figure_rows,
    markdown_table,
    progress,
    ratio_rows,
    text_table,
    write_json,
)
from tests.bench.machine import Machine, describe
from tests.bench.support import Bench, point_catalog

PARTS = ("catalog", "auth", "syncs")


class _LogTail(io.TextIOBase):
    """The stack's last lines, printed only when the bench fails."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        del self.lines[:-300]
        return len(text)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="take only these figures (repeatable); ratios needing others are left out",
    )
    return parser.parse_args()


def _stack_settings() -> dict[str, str]:
    return {
        "GATEWAY_PORT": str(free_port()),
        "SYNC_SCHEDULE_INTERVAL_SECONDS": "0",
        # Registering hundreds of sellers must not cost production's bcrypt; the login
        # figure starts an auth at production's cost of its own.
        "BCRYPT_ROUNDS": "4",
        # Every client of the bench is 127.0.0.1: no per-address login limit.
        "LOGIN_RATE_BURST": "0",
        "SYNC_MAX_CONCURRENT": str(syncs.REPLICA_CAPACITY),
        # See syncs.STACK_REPLICA_CLAIM_SECONDS.
        "SYNC_CLAIM_INTERVAL_SECONDS": syncs.STACK_REPLICA_CLAIM_SECONDS,
    }


def _ratio(
    results: Results,
    name: str,
    top: tuple[str, str],
    bottom: float | tuple[str, str],
    goal: Goal,
    basis: str = "",
) -> None:
    """top / bottom, each a (figure name, backend) or bottom a number; left out unless every
    figure it needs was taken (`--only`)."""
    if not results.has(*top):
        return
    if isinstance(bottom, tuple):
        if not results.has(*bottom):
            return
        value = results.median(*top) / results.median(*bottom)
        basis = basis or f"{_key(top)} / {_key(bottom)}"
    else:
        value = results.median(*top) / bottom
    results.ratio(name, value, goal, basis or _key(top))


def _key(figure: tuple[str, str]) -> str:
    name, backend = figure
    return f"{name} ({backend})" if backend else name


def add_ratios(results: Results, backends: list[str], main_backend: str) -> None:
    r = results
    _ratio(
        r,
        "write units per first-synced product",
        ("write_units_per_first_synced_product", ""),
        1.0,
        Goal("<=", 2),
    )
    _ratio(
        r,
        "creation lease write units per first-synced product (2 per batch of creations)",
        ("creation_lease_write_units_per_first_synced_product", ""),
        1.0,
        REPORTED,
    )
    for backend in backends:
        _ratio(
            r,
            f"store batch upsert / raw BatchWriteItem of the same items, {backend}",
            ("store_batch_upsert_products_per_s", backend),
            ("raw_batch_write_same_items_products_per_s", backend),
            Goal(">=", 0.8) if backend == "dynalite" else REPORTED,
        )
    _ratio(
        r,
        "PostgreSQL statements, 32 requests with a fresh token",
        ("pg_statements_32_requests_fresh_token", ""),
        1.0,
        Goal("<=", 2),
    )
    _ratio(
        r,
        "GetMe p99 during 20 logins / alone",
        ("get_me_p99_ms_during_20_logins", ""),
        ("get_me_p99_ms_alone", ""),
        Goal("<=", 1.2),
    )
    _ratio(
        r,
        "GetProduct p99 during 20 logins / alone",
        ("get_product_p99_ms_during_20_logins", ""),
        ("get_product_p99_ms_alone", ""),
        REPORTED,
    )
    _ratio(
        r,
        "sync peak RSS, 50k / 1k Walmart products (fresh replicas)",
        ("sync_peak_rss_mb_walmart_50k", ""),
        ("sync_peak_rss_mb_walmart_1k", ""),
        Goal("<=", 1.3),
    )
    for backend in backends:
        for process in ("catalog", "envoy"):
            _ratio(
                r,
                f"{process} CPU ms per GetProduct, {backend}",
                (f"{process}_cpu_ms_per_get", backend),
                1.0,
                REPORTED,
            )
    for name, label, goal in (
        ("walmart_10k_sync_s", "Walmart 10k first sync", Goal("<=", 1.1)),
        ("amazon_2k_sync_s", "Amazon 2k first sync", Goal("<=", 1.1)),
        ("walmart_1k_sync_s", "Walmart 1k first sync (memory replica)", REPORTED),
        ("walmart_50k_sync_s", "Walmart 50k first sync (memory replica)", REPORTED),
        ("amazon_100_alone_s", "Amazon 100 first sync alone", REPORTED),
    ):
        floor = results.figures[name].floor if results.has(name) else None
        if floor:
            basis = f"{name} / {floor:.1f} s"
            _ratio(r, f"{label} / its rate-limit floor", (name, ""), floor, goal, basis)
    if (
        results.has("amazon_100_x120_at_once_s")
        and results.has("amazon_100_alone_s")
        and results.has("raw_write_x120_items_s", main_backend)
    ):
        at_once = results.median("amazon_100_x120_at_once_s")
        bound = 2 * results.median("amazon_100_alone_s") + results.median(
            "raw_write_x120_items_s", main_backend
        )
        results.ratio(
            "120 syncs at once / (2 x one alone + raw writes of their items)",
            at_once / bound,
            Goal("<=", 1),
            "amazon_100_x120_at_once_s / (2 amazon_100_alone_s + raw_write_x120_items_s)",
        )
    _ratio(
        r,
        "one replica / two replicas",
        ("scale_out_one_replica_s", ""),
        ("scale_out_two_replicas_s", ""),
        Goal("~", 2),
    )
    for backend in backends:
        _ratio(
            r,
            f"REST via Envoy / direct gRPC, GetProduct p50, {backend}",
            ("get_rest_p50_ms", backend),
            ("get_grpc_p50_ms", backend),
            REPORTED,
        )
        _ratio(
            r,
            f"direct gRPC / its DynamoDB read, GetProduct p50, {backend}",
            ("get_grpc_p50_ms", backend),
            ("get_dynamodb_read_p50_ms", backend),
            REPORTED,
        )
        _ratio(
            r,
            f"unchanged / first batch upsert speed, same 1,000 products, {backend}",
            ("rest_unchanged_upsert_products_per_s", backend),
            ("rest_first_upsert_products_per_s", backend),
            REPORTED,
        )


def _take_all(bench: Bench, parts: list[str]) -> str:
    """Every part asked for; answers the DynamoDB server auth and sync figures ran on."""
    results = bench.results
    dynalite = start_dynalite(bench.stack)
    if dynalite:
        bench.dynamodb["dynalite"] = dynalite
    else:
        progress("no Node.js: every figure is taken on moto only")
    main_backend = "dynalite" if dynalite else "moto"
    results.facts["dynamodb_servers"] = list(bench.dynamodb)
    results.facts["auth_and_sync_figures_on"] = main_backend
    work: list[tuple[str, Callable[[], None]]] = [
        (f"catalog on {b}", partial(catalog.run, bench, b, once=b == main_backend))
        for b in bench.dynamodb
        if "catalog" in parts
    ]
    # Reads and syncs from here on run against the server without moto's scans.
    work.append(("catalog back on its server", partial(point_catalog, bench, main_backend)))
    if "auth" in parts:
        work.append(("auth", partial(auth.run, bench)))
    if "syncs" in parts:
        work.append(("syncs", partial(syncs.run, bench)))
    for name, take in work:
        _take(name, take, results)
    return main_backend


def _take(name: str, take: Callable[[], None], results: Results) -> None:
    """Take one part's figures; a part that fails is reported and the others still run."""
    started = time.monotonic()
    try:
        take()
    except Exception as exc:
        traceback.print_exc()
        progress(f"{name} FAILED after {time.monotonic() - started:.0f} s: {exc}")
        results.facts.setdefault("failed", []).append(f"{name}: {exc}")
    else:
        progress(f"{name}: done in {time.monotonic() - started:.0f} s")


def report(results: Results, machine: Machine, command: str, seconds: float) -> str:
    """The run as Markdown, the tables BENCHMARKS.md is made of."""
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')}, {seconds / 60:.1f} minutes: `{command}`",
        "",
        markdown_table(["machine", ""], [[k, str(v)] for k, v in machine.items()]),
        "",
        "### Ratios and goals",
        "",
        markdown_table(RATIO_HEADER, ratio_rows(results)),
        "",
        "### Figures",
        "",
        markdown_table(FIGURE_HEADER, figure_rows(results)),
    ]
    profile = results.facts.get("catalog_profile")
    if profile and profile.get("samples"):
        per_request = profile["samples"] / max(1, profile["requests"])
        lines += [
            "",
            "### Where the catalog's CPU goes (GetProduct)",
            "",
            f"py-spy, {profile['seconds']} s at 100 Hz of the catalog process on "
            f"{profile['backend']} while {profile['clients']} clients sent "
            f"{profile['requests']:,} GetProducts through Envoy: {profile['samples']:,} samples "
            f"of the thread holding the GIL ({per_request * 10:.2f} ms per request). Raw stacks: "
            f"`{profile['raw']}`.",
            "",
            markdown_table(
                ["by library (the first one our deepest frame called)", "% of CPU samples"],
                [[name, f"{share}"] for name, share in profile["by_library_percent"]],
            ),
            "",
            markdown_table(
                ["our functions, inclusive", "% of CPU samples"],
                [[name, f"{share}"] for name, share in profile["our_functions_inclusive_percent"]],
            ),
            "",
            markdown_table(
                ["leaf functions (self time)", "% of CPU samples"],
                [[name, f"{share}"] for name, share in profile["leaf_functions_percent"]],
            ),
        ]
    elif profile:
        lines += ["", f"No profile: {profile.get('error', 'no samples')}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    arguments = _arguments()
    parts = arguments.only or list(PARTS)
    command = shlex.join(["python", "-m", "tests.bench", *sys.argv[1:]])
    started = time.monotonic()
    machine = describe()
    results = Results()
    tail = _LogTail()
    out = bench_dir()
    with tempfile.TemporaryDirectory(prefix="bench-") as data_dir:
        progress("starting the stack")
        stack = start_stack(Path(data_dir), _stack_settings(), log_sink=tail)
        # This process talks to the DynamoDB servers too, with the stack's credentials.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, stack.env[name])
        try:
            with httpx.Client(base_url=stack.gateway_url, timeout=120) as client:
                bench = Bench(stack, client, results, {"moto": stack.env["DYNAMODB_ENDPOINT_URL"]})
                main_backend = _take_all(bench, parts)
                if results.facts.get("failed"):
                    sys.stderr.write("".join(tail.lines))
        except Exception:
            sys.stderr.write("".join(tail.lines))
            raise
        finally:
            stack.stop()
    seconds = time.monotonic() - started
    add_ratios(results, list(bench.dynamodb), main_backend)
    document = results.as_json(machine, command, seconds)
    write_json(out / "results.json", document)
    if arguments.json:
        write_json(arguments.json, document)
    (out / "report.md").write_text(report(results, machine, command, seconds))
    print(text_table(FIGURE_HEADER, figure_rows(results)))
    print()
    print(text_table(RATIO_HEADER, ratio_rows(results)))
    print(f"\n{seconds / 60:.1f} minutes; saved .bench/results.json and .bench/report.md")
    if results.facts.get("failed"):
        print("FAILED: " + "; ".join(results.facts["failed"]))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
