"""The `marketsync` command: log in, manage credentials, run syncs and move products through the
gateway's REST API (the REST contract, which the gateway serves as /openapi.json and /docs)."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from marketsync_cli.client import Api, ApiError
from marketsync_cli.tokens import save_token, token_for

DEFAULT_URL = "http://localhost:8080"
FINAL_STATUSES = ("succeeded", "partial", "failed")
# The batch upsert endpoint takes up to 1000 products a call.
MAX_BATCH = 1000
# What a product carries that a client cannot write: left out on import.
READ_ONLY_FIELDS = ("created_at", "updated_at", "synced_at", "listings")
CSV_FIELDS = (
    "sku", "marketplace", "title", "description", "brand", "category", "price", "currency",
    "inventory_quantity", "image_url", "asin", "created_at", "updated_at", "synced_at",
)  # fmt: skip
# Each marketplace's credential fields: (name, secret, default). Secrets are asked for hidden.
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, bool, str | None], ...]] = {
    "amazon": (
        ("refresh_token", True, None),
        ("lwa_app_id", False, None),
        ("lwa_client_secret", True, None),
        ("seller_id", False, None),
        ("marketplace_id", False, "ATVPDKIKX0DER"),
    ),
    "walmart": (("client_id", False, None), ("client_secret", True, None)),
}

app = typer.Typer(
    help="Marketplace Sync from the command line, through the gateway's REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
credentials_app = typer.Typer(help="Marketplace credentials (admin or stronger).")
sync_app = typer.Typer(help="Syncs of the marketplaces into the catalog.")
products_app = typer.Typer(help="The catalog's products.")
app.add_typer(credentials_app, name="credentials", no_args_is_help=True)
app.add_typer(sync_app, name="sync", no_args_is_help=True)
app.add_typer(products_app, name="products", no_args_is_help=True)
# Server text (titles, messages) is printed as it is: never read as rich markup.
console = Console(markup=False)


def run() -> None:
    """The `marketsync` command: a failed call prints the server's message and exits 1."""
    try:
        app()
    except ApiError as error:
        Console(stderr=True).print(Text.assemble(("error: ", "red"), str(error)))
        sys.exit(1)


class Marketplace(StrEnum):
    amazon = "amazon"
    walmart = "walmart"


class FileFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@app.callback()
def main(
    context: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="MARKETSYNC_URL", help="The gateway's base URL.")
    ] = DEFAULT_URL,
) -> None:
    context.obj = url.rstrip("/")


def _api(context: typer.Context) -> Api:
    """The API as the logged-in user of this gateway."""
    url: str = context.obj
    token = token_for(url)
    if token is None:
        raise ApiError(f"not logged in to {url}: run `marketsync login` first")
    return Api(url, token)


@app.command()
def login(
    context: typer.Context,
    email: Annotated[str, typer.Option(prompt=True)],
    organization_id: Annotated[
        str | None, typer.Option(help="The organization to act on; your first one if absent.")
    ] = None,
) -> None:
    """Log in and keep the token in your config directory. The password comes from
    MARKETSYNC_PASSWORD or is asked for (hidden); never from the command line."""
    password = os.environ.get("MARKETSYNC_PASSWORD") or typer.prompt("Password", hide_input=True)
    body: dict[str, Any] = {"email": email, "password": password}
    if organization_id:
        body["organization_id"] = organization_id
    answer = Api(context.obj).call("POST", "/api/auth/login", body)
    save_token(context.obj, answer["token"])
    organization = next(
        (o for o in answer["organizations"] if o["id"] == answer["organization_id"]), None
    )
    name = organization["name"] if organization else answer["organization_id"]
    console.print(f"Logged in to {context.obj} as {answer['user']['email']} in {name}.")


@app.command()
def orgs(context: typer.Context) -> None:
    """Your organizations and your role in each; * marks the one you act on."""
    me = _api(context).call("GET", "/api/auth/me")
    table = Table("", "id", "name", "role")
    for organization in me["organizations"]:
        current = "*" if organization["id"] == me["organization_id"] else ""
        table.add_row(current, organization["id"], organization["name"], organization["role"])
    console.print(table)


@app.command()
def members(context: typer.Context) -> None:
    """The members of the organization you act on."""
    answer = _api(context).call("GET", "/api/organization/members")
    table = Table("user id", "email", "name", "role")
    for member in answer["members"]:
        table.add_row(member["user_id"], member["email"], member["name"], member["role"])
    console.print(table)


@credentials_app.command("set")
def set_credentials(context: typer.Context, marketplace: Marketplace) -> None:
    """Save a marketplace's credentials. Each field comes from the environment
    (MARKETSYNC_AMAZON_REFRESH_TOKEN, MARKETSYNC_WALMART_CLIENT_SECRET, ...) or is asked for;
    secrets are asked for hidden, and never taken from the command line."""
    fields = {}
    for name, secret, default in CREDENTIAL_FIELDS[marketplace]:
        variable = f"MARKETSYNC_{marketplace.upper()}_{name.upper()}"
        value = os.environ.get(variable) or typer.prompt(name, default=default, hide_input=secret)
        fields[name] = value
    answer = _api(context).call("PUT", f"/api/credentials/{marketplace}", {"credentials": fields})
    masked = ", ".join(f"{name}={value}" for name, value in sorted(answer["masked"].items()))
    console.print(f"Saved {marketplace} credentials: {masked}")


@credentials_app.command("list")
def list_credentials(context: typer.Context) -> None:
    """The organization's saved credentials, masked."""
    answer = _api(context).call("GET", "/api/credentials")
    table = Table("marketplace", "active", "updated", "fields")
    for saved in answer["credentials"]:
        fields = ", ".join(f"{k}={v}" for k, v in sorted(saved["masked"].items()))
        table.add_row(saved["marketplace"], str(saved["is_active"]), saved["updated_at"], fields)
    console.print(table)


@sync_app.command("start")
def start_sync(
    context: typer.Context,
    marketplace: Marketplace,
    watch: Annotated[bool, typer.Option(help="Follow the sync with a progress bar.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between looks.")] = 1.0,
) -> None:
    """Start a sync of MARKETPLACE; with --watch, follow it until it ends (exit 1 unless it
    succeeds)."""
    api = _api(context)
    started = api.call("POST", "/api/sync", {"marketplace": marketplace})
    sync_id = started["sync_id"]
    console.print(f"Sync {sync_id} of {marketplace} {started['status']}.")
    if watch:
        _watch(api, sync_id, interval)


class _TimeLeftColumn(TimeRemainingColumn):
    """rich's time remaining, named: beside the time elapsed a bare time would be ambiguous.
    Blank while the total is unknown."""

    def render(self, task: Task) -> Text:
        remaining = super().render(task)
        return Text.assemble("ETA ", remaining) if remaining.plain else remaining


def sync_progress(console: Console, get_time: Callable[[], float] | None = None) -> Progress:
    """The bar of a watched sync: it pulses until the marketplace has said how many items the
    catalogue holds (`items_total`), then fills towards it and shows the time remaining."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]}", style="progress.data.speed"),
        TimeElapsedColumn(),
        _TimeLeftColumn(),
        console=console,
        get_time=get_time,
    )


def show_sync(progress: Progress, task: TaskID, log: dict[str, Any], rate: str) -> None:
    """Move the bar to where the sync log says the sync is."""
    progress.update(
        task,
        description=log["status"],
        # None leaves the bar pulsing; once known, the total stays.
        total=log.get("items_total"),
        completed=log["items_fetched"],
        counts=_counts(log),
        rate=rate,
    )


def _watch(api: Api, sync_id: str, interval: float) -> None:
    progress = sync_progress(console)
    first_seen: tuple[float, int] | None = None  # when and how many, once it fetched any
    with progress:
        task = progress.add_task("queued", total=None, counts="", rate="")
        while True:
            log = api.call("GET", f"/api/sync/{sync_id}")
            now, fetched = time.monotonic(), log["items_fetched"]
            first_seen = first_seen or ((now, fetched) if fetched else None)
            rate = ""
            if first_seen and now > first_seen[0] and fetched > first_seen[1]:
                rate = f"{(fetched - first_seen[1]) / (now - first_seen[0]):,.0f}/s"
            show_sync(progress, task, log, rate)
            if log["status"] in FINAL_STATUSES:
                # A sync whose size was never said ends with a full bar, not a pulse.
                progress.update(task, total=log.get("items_total", fetched))
                break
            time.sleep(interval)
    seconds = log["duration_ms"] / 1000
    rate = f", {log['items_fetched'] / seconds:,.0f}/s" if seconds else ""
    console.print(f"Sync {sync_id} {log['status']}: {_counts(log)} in {seconds:.1f} s{rate}.")
    if log["status"] != "succeeded":
        raise ApiError(log["error"] or f"the sync ended {log['status']}")


def _fetched(log: dict[str, Any]) -> str:
    """Items fetched, out of the catalogue's size once the marketplace has said it."""
    total = log.get("items_total")
    return f"{log['items_fetched']}" if total is None else f"{log['items_fetched']} of {total}"


def _counts(log: dict[str, Any]) -> str:
    return (
        f"{_fetched(log)} fetched, {log['items_written']} written, "
        f"{log['items_unchanged']} unchanged, {log['items_failed']} failed"
    )


@sync_app.command("list")
def list_syncs(
    context: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
) -> None:
    """The organization's syncs, newest first."""
    logs = _api(context).pages("/api/sync/logs", "logs", {"page_size": min(limit, 100)})
    table = Table("id", "marketplace", "status", "fetched", "written", "unchanged", "failed")
    table.add_column("queued")
    for log in itertools.islice(logs, limit):
        table.add_row(
            log["sync_id"], log["marketplace"], log["status"],
            _fetched(log),
            *(str(log[f"items_{n}"]) for n in ("written", "unchanged", "failed")),
            log.get("queued_at", ""),
        )  # fmt: skip
    console.print(table)


def _products(context: typer.Context, marketplace: Marketplace | None) -> Iterator[dict[str, Any]]:
    params = {"page_size": 100, **({"marketplace": marketplace} if marketplace else {})}
    return _api(context).pages("/api/products", "products", params)


MarketplaceFilter = Annotated[
    Marketplace | None, typer.Option(help="Only products listed on this marketplace.")
]


@products_app.command("list")
def list_products(
    context: typer.Context,
    marketplace: MarketplaceFilter = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
) -> None:
    """Products, newest first: every one unless --limit."""
    table = Table("sku", "title", "price", "currency", "inventory", "marketplace")
    for product in itertools.islice(_products(context, marketplace), limit):
        table.add_row(
            product["sku"], product["title"], product["price"], product["currency"],
            str(product["inventory_quantity"]), product["marketplace"],
        )  # fmt: skip
    console.print(table)


@products_app.command("get")
def get_product(context: typer.Context, sku: str) -> None:
    """One product, as JSON."""
    product = _api(context).call("GET", f"/api/products/{_path_segment(sku)}")
    typer.echo(json.dumps(product, indent=2))


def _path_segment(value: str) -> str:
    return quote(value, safe="")


@products_app.command("export")
def export_products(
    context: typer.Context,
    file_format: Annotated[FileFormat, typer.Option("--format")] = FileFormat.jsonl,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    marketplace: MarketplaceFilter = None,
) -> None:
    """Every product (page after page) as JSON lines or CSV. CSV leaves listings out."""
    products = _products(context, marketplace)
    opened = output.open("w", newline="") if output else contextlib.nullcontext(sys.stdout)
    with opened as file:
        if file_format == FileFormat.jsonl:
            for product in products:
                file.write(json.dumps(product) + "\n")
        else:
            writer = csv.DictWriter(file, CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(products)


@products_app.command("import")
def import_products(
    context: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="By the file's extension if absent.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH)] = 500,
) -> None:
    """Upsert the products of FILE (JSON lines or CSV, as export writes them) in batches.
    Exit 1 if any product failed, each named with why."""
    try:
        chosen = file_format or FileFormat(file.suffix.lstrip(".").lower())
    except ValueError:
        raise typer.BadParameter("use --format jsonl or csv", param_hint="FILE") from None
    products = [_writable(product) for product in _read_products(file, chosen)]
    api = _api(context)
    upserted = unchanged = 0
    failed: list[dict[str, str]] = []
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("import", total=len(products))
        for start in range(0, len(products), batch_size):
            batch = products[start : start + batch_size]
            answer = api.call("POST", "/api/products:batchUpsert", {"products": batch})
            upserted += answer["upserted"]
            unchanged += answer["unchanged"]
            failed += answer["failed"]
            progress.advance(task, len(batch))
    console.print(f"{upserted} upserted ({unchanged} unchanged), {len(failed)} failed.")
    for failure in failed:
        console.print(f"  {failure['sku']}: {failure['message']}")
    if failed:
        raise typer.Exit(1)


def _read_products(file: Path, file_format: FileFormat) -> Iterable[dict[str, Any]]:
    with file.open(newline="") as lines:
        if file_format == FileFormat.csv:
            return list(csv.DictReader(lines))
        products = []
        for number, line in enumerate(lines, 1):
            try:
                products += [json.loads(line)] if line.strip() else []
            except ValueError as error:
                message = f"line {number} is not JSON: {error}"
                raise typer.BadParameter(message, param_hint="FILE") from None
        return products


def _writable(product: dict[str, Any]) -> dict[str, Any]:
    """The product's writable fields; empty CSV cells are left out (the server's defaults)."""
    return {
        name: value
        for name, value in product.items()
        if name not in READ_ONLY_FIELDS and value not in ("", None)
    }
