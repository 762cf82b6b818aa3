"""``omnihook outbox``: look at the sender's stored deliveries; retry or purge them."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.console import Console

from omnihook.store import OUTBOX_STATUSES, OutboxAttempt, OutboxEntry, OutboxStatus, Store
from omnihook.store.cli import (
    format_time,
    listing_options,
    print_details,
    print_listing,
    print_payload,
    print_table,
    run_with_store,
    shorten,
    show_secrets_option,
    store_option,
)

__all__ = ["outbox"]

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@click.group()
def outbox() -> None:
    """The sender's outbox: list deliveries, show one, retry or purge them."""


@outbox.command("list")
@click.option("--status", type=click.Choice(OUTBOX_STATUSES), help="Only deliveries in this state.")
@click.option("--room", "room_id", metavar="ID", help="Only deliveries of this room.")
@listing_options
@store_option
def list_entries(
    status: OutboxStatus | None, room_id: str | None, limit: int, as_json: bool, store_url: str
) -> None:
    """The newest deliveries first, with their state and last outcome."""

    async def work(store: Store) -> tuple[list[OutboxEntry], dict[str, int]]:
        return await store.outbox.find(
            status=status, room_id=room_id, limit=limit
        ), await store.outbox.counts()

    found, counts = run_with_store(store_url, work)
    print_listing("deliveries", found, counts, as_json=as_json, summary=_summary, row=_row,
                  columns=("id", "created (UTC)", "type", "room", "url", "status", "tries",
                           "next / finished", "last outcome"),
                  status=status, room_id=room_id)  # fmt: skip


def _row(entry: OutboxEntry) -> tuple[str, ...]:
    due = entry.finished_at if entry.status in ("done", "dead") else entry.next_attempt_at
    outcome = entry.last_error or (f"HTTP {entry.last_status}" if entry.last_status else "")
    return (
        str(entry.id),
        format_time(entry.created_at),
        entry.type or "?",
        entry.room_id or "-",
        entry.url,
        entry.status,
        str(entry.attempts),
        format_time(due),
        shorten(outcome),
    )


def _summary(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": format_time(entry.created_at),
        "type": entry.type,
        "room_id": entry.room_id,
        "url": entry.url,
        "status": entry.status,
        "attempts": entry.attempts,
        "last_status": entry.last_status,
        "last_error": entry.last_error,
    }


@outbox.command("show")
@click.argument("entry_id", type=int)
@show_secrets_option
@store_option
def show_entry(entry_id: int, show_secrets: bool, store_url: str) -> None:
    """One delivery: its state, its payload (the visitor's token masked) and every attempt."""

    async def work(store: Store) -> tuple[OutboxEntry | None, list[OutboxAttempt]]:
        return await store.outbox.get(entry_id), await store.outbox.attempts(entry_id)

    entry, attempts = run_with_store(store_url, work)
    if entry is None:
        raise click.ClickException(f"no delivery {entry_id}")
    console = Console()
    waiting = entry.status in ("pending", "failed", "sending")
    print_details(console, [
        ("delivery", str(entry.id)),
        ("url", entry.url),
        ("type", entry.type or "?"),
        ("room", entry.room_id or "-"),
        ("created", format_time(entry.created_at) + " UTC"),
        ("status", entry.status),
        ("attempts", str(entry.attempts)),
        ("next attempt" if waiting else "finished",
         format_time(entry.next_attempt_at if waiting else entry.finished_at)),
        ("last answer", entry.response_text if entry.response_text is not None else "-"),
        ("last error", entry.last_error or "-"),
    ])  # fmt: skip
    print_payload(console, entry.body, show_secrets=show_secrets)
    if attempts:
        console.print()
        print_table(
            console,
            ("#", "started (UTC)", "took", "status", "error"),
            (
                (str(a.number), format_time(a.started_at), f"{a.elapsed * 1000:.0f} ms",
                 str(a.status) if a.status is not None else "-", a.error or "")
                for a in attempts
            ),
            title="attempts",
        )  # fmt: skip


@outbox.command("retry")
@click.argument("entry_ids", nargs=-1, type=int)
@click.option("--dead", is_flag=True, help="Retry every dead delivery.")
@store_option
def retry_entries(entry_ids: tuple[int, ...], dead: bool, store_url: str) -> None:
    """Make dead (or failed) deliveries due now, with a fresh retry budget. A running sender
    with this outbox delivers them."""
    if bool(entry_ids) == dead:
        raise click.UsageError("give delivery ids or --dead (not both)")

    async def work(store: Store) -> list[int]:
        return await store.outbox.retry(None if dead else entry_ids, time.time())

    changed = run_with_store(store_url, work)
    if changed:
        click.echo(f"{len(changed)} delivery(ies) due now: {', '.join(map(str, changed))}")
    else:
        click.echo(
            "nothing to retry" + ("" if dead else " (only dead or failed deliveries can be)"),
            err=not dead,
        )
    missing = sorted(set(entry_ids) - set(changed))
    if missing:
        click.echo(
            f"not retried (no such delivery, or not dead/failed): {', '.join(map(str, missing))}",
            err=True,
        )
        sys.exit(1)


@outbox.command("purge")
@click.option("--done", "purge_done", is_flag=True, help="Delete delivered entries.")
@click.option("--dead", "purge_dead", is_flag=True, help="Delete dead entries.")
@click.option(
    "--older-than",
    default="0s",
    show_default=True,
    metavar="AGE",
    help="Only entries finished longer ago than this (30s, 15m, 12h, 7d).",
)
@store_option
def purge_entries(purge_done: bool, purge_dead: bool, older_than: str, store_url: str) -> None:
    """Delete finished deliveries and their attempts."""
    if not (purge_done or purge_dead):
        raise click.UsageError("say what to purge: --done, --dead or both")
    age = _duration(older_than)
    statuses: list[OutboxStatus] = []
    if purge_done:
        statuses.append("done")
    if purge_dead:
        statuses.append("dead")

    async def work(store: Store) -> int:
        return await store.outbox.purge(statuses, time.time() - age)

    count = run_with_store(store_url, work)
    click.echo(f"purged {count} delivery(ies)")


def _duration(text: str) -> float:
    unit = text[-1:]
    try:
        if unit in _DURATION_UNITS:
            return float(text[:-1]) * _DURATION_UNITS[unit]
        return float(text)
    except ValueError:
        raise click.BadParameter(
            f"expected a number with s, m, h or d, got {text!r}", param_hint="--older-than"
        ) from None
