"""Pieces shared by the commands that work on a store (``omnihook events``, ``omnihook outbox``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import Store
from .config import DEFAULT_STORE_URL, STORE_ENV, parse_store_url
from .errors import StoreError
from .redaction import MASK

__all__ = [
    "format_time",
    "listing_options",
    "print_details",
    "print_listing",
    "print_payload",
    "print_table",
    "run_with_store",
    "shorten",
    "show_secrets_option",
    "store_option",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Row = TypeVar("Row")


def listing_options(func: F) -> F:
    """``--limit N`` (50) and ``--json`` (one object per line): what every ``list`` command takes."""
    func = click.option(
        "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
    )(func)
    return click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))(func)


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


def run_with_store(
    store_url: str, work: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the store, run ``work`` on it, close it; store trouble becomes a clean CLI error.

    A SQLite file that does not exist is an error (exit 1) unless ``create``: a command that only
    looks at (or tidies) what a server stored must not leave an empty database behind, in a
    directory where nothing was ever received. PostgreSQL stores are opened as they are.
    """
    config = parse_store_url(store_url)
    if not create and config.path is not None and not config.path.exists():  # SQLite only
        raise click.ClickException(
            f"no store at {_shown(config.path)}: start `omnihook serve` first or pass "
            f"--store (${STORE_ENV})"
        )

    async def main() -> T:
        try:
            async with Store.open(config) as store:
                return await work(store)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None

    return asyncio.run(main())


def _shown(path: Path) -> str:
    """A path as typed: ``./omnihook.db`` rather than ``omnihook.db``."""
    text = str(path)
    return text if path.is_absolute() or text.startswith(".") else f"./{text}"


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


def show_secrets_option(func: F) -> F:
    """``--show-secrets``: print a payload's visitor token instead of masking it."""
    return click.option(
        "--show-secrets",
        is_flag=True,
        help="Show the visitor's Livechat token in the payload (masked by default).",
    )(func)


def print_payload(console: Console, body: bytes, *, show_secrets: bool = False) -> None:
    """A stored body: pretty JSON when it is JSON, else the text. The visitor's Livechat token
    (``visitor.token``, and ``navigation.token`` of navigation messages) is masked unless
    ``show_secrets``: with it, anyone can post messages as that visitor."""
    console.print("\npayload:", style="bold")
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or too deep to show as JSON
        console.print(Text(text))
        return
    masked = not show_secrets and _mask_visitor_tokens(document) > 0
    console.print_json(data=document)
    if masked:
        console.print(
            f"(the visitor's Livechat token is masked as {_MASK}; --show-secrets shows it)",
            style="dim",
        )


_MASK = MASK  # the one mask: as in redacted error texts


def _mask_visitor_tokens(document: Any) -> int:
    """Replace the visitor's token wherever Rocket.Chat puts it in a payload; returns how many."""
    if not isinstance(document, dict):
        return 0
    holders: list[Any] = [document.get("visitor")]
    messages = document.get("messages")
    for message in messages if isinstance(messages, list) else []:
        navigation = message.get("navigation") if isinstance(message, dict) else None
        if isinstance(navigation, dict):
            holders += [navigation, navigation.get("page")]
    masked = 0
    for holder in holders:
        if isinstance(holder, dict) and holder.get("token") not in (None, "", _MASK):
            holder["token"] = _MASK
            masked += 1
    return masked
