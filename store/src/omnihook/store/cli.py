"""Pieces shared by the commands that work on a store (``omnihook events``, ``omnihook outbox``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import Store
from .config import DEFAULT_STORE_URL, STORE_ENV, parse_store_url
from .errors import StoreError

__all__ = [
    "format_time",
    "print_details",
    "print_listing",
    "print_payload",
    "print_table",
    "run_with_store",
    "shorten",
    "store_option",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Row = TypeVar("Row")


def store_option(func: F) -> F:
    """``--store URL``, from ``OMNIHOOK_STORE``, default the embedded SQLite file."""
    return click.option(
        "--store",
        "store_url",
        default=DEFAULT_STORE_URL,
        show_default=True,
        envvar=STORE_ENV,
        metavar="URL",
        callback=_check_store_url,
        help=f"The store: sqlite:///FILE or postgresql://... (${STORE_ENV}).",
    )(func)


def _check_store_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_store_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def run_with_store(store_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run ``work`` on it, close it; store trouble becomes a clean CLI error."""

    async def main() -> T:
        try:
            async with Store.open(store_url) as store:
                return await work(store)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None

    return asyncio.run(main())


def format_time(timestamp: float | None) -> str:
    """A Unix time as ``2025-01-01 10:00:00`` (UTC), or empty."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def shorten(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(
    console: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    title: str | None = None,
) -> None:
    """A plain table; the last column (an error, an outcome) wraps instead of being cut."""
    table = Table(show_edge=False, header_style="bold", title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold" if index == len(columns) - 1 else "ellipsis")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # data, not markup: "[file: x]" stays
    console.print(table)


def print_listing(
    noun: str,
    found: Sequence[Row],
    counts: dict[str, int],
    *,
    as_json: bool,
    summary: Callable[[Row], dict[str, Any]],
    columns: Sequence[str],
    row: Callable[[Row], Sequence[str]],
    status: str | None,
    room_id: str | None,
) -> None:
    """What a ``list`` command prints: one JSON object per item, or a table (or "no ..." and the
    filters) followed by the count in each status."""
    if as_json:
        for item in found:
            click.echo(json.dumps(summary(item)))
        return
    console = Console()
    if not found:
        where = (f" with status {status}" if status else "") + (
            f" in room {room_id}" if room_id else ""
        )
        click.echo(f"no {noun}{where}")
    else:
        print_table(console, columns, (row(item) for item in found))
    console.print(", ".join(f"{name}: {count}" for name, count in counts.items()), style="dim")


def print_details(console: Console, pairs: Iterable[tuple[str, str]]) -> None:
    """``label  value`` lines, labels in bold."""
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    for label, value in pairs:
        details.add_row(label, Text(value))
    console.print(details)


def print_payload(console: Console, body: bytes) -> None:
    """A stored body: pretty JSON when it is JSON, else the text."""
    console.print("\npayload:", style="bold")
    text = body.decode("utf-8", "replace")
    try:
        console.print_json(text)
    except ValueError:
        console.print(Text(text))
