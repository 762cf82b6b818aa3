"""``omnihook events``: look at stored events and their attempts; handle them again."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from omnihook.store import (
    EVENT_SOURCES,
    EVENT_STATUSES,
    EventSource,
    EventStatus,
    Store,
    StoredEvent,
)
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

__all__ = ["events"]


@click.group()
def events() -> None:
    """Stored events: list them, show one, handle them again."""


@events.command("list")
@click.option("--status", type=click.Choice(EVENT_STATUSES), help="Only events in this state.")
@click.option("--room", "room_id", metavar="ID", help="Only events of this room.")
@click.option(
    "--source",
    type=click.Choice(EVENT_SOURCES),
    help="Only events Rocket.Chat posted (webhook) or reconcile rebuilt (reconcile).",
)
@listing_options
@store_option
def list_events(
    status: EventStatus | None,
    room_id: str | None,
    source: EventSource | None,
    limit: int,
    as_json: bool,
    store_url: str,
) -> None:
    """The newest events first, with their state and last error; rebuilt ones are marked."""

    async def work(store: Store) -> tuple[list[StoredEvent], dict[str, int]]:
        return await store.events.find(
            status=status, room_id=room_id, limit=limit, source=source
        ), await store.events.counts()

    found, counts = run_with_store(store_url, work)
    print_listing("events", found, counts, as_json=as_json, summary=_summary, row=_row,
                  columns=("id", "received (UTC)", "type", "room", "status", "tries",
                           "next / finished", "last error"),
                  status=status, room_id=room_id)  # fmt: skip


def _row(event: StoredEvent) -> tuple[str, ...]:
    due = event.finished_at if event.status in ("done", "dead") else event.next_attempt_at
    return (
        str(event.id),
        format_time(event.received_at),
        event.type + (" (rebuilt)" if event.source == "reconcile" else ""),
        event.room_id or "-",
        event.status + (" (stale)" if event.stale else ""),
        str(event.attempts),
        format_time(due),
        shorten(event.last_error),
    )


def _summary(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "received_at": format_time(event.received_at),
        "type": event.type,
        "room_id": event.room_id,
        "status": event.status,
        "attempts": event.attempts,
        "stale": event.stale,
        "last_error": event.last_error,
        "dedup_key": event.dedup_key,
        "identity": event.identity,
        "source": event.source,
    }


@events.command("show")
@click.argument("event_id", type=int)
@show_secrets_option
@store_option
def show_event(event_id: int, show_secrets: bool, store_url: str) -> None:
    """One event: its state, its payload (the visitor's token masked) and every handling
    attempt."""

    async def work(store: Store) -> tuple[StoredEvent | None, list[Any]]:
        return await store.events.get(event_id), await store.events.attempts(event_id)

    event, attempts = run_with_store(store_url, work)
    if event is None:
        raise click.ClickException(f"no event {event_id}")
    console = Console()
    waiting = event.status in ("pending", "failed")
    print_details(console, [
        ("event", str(event.id)),
        ("type", event.type),
        ("room", event.room_id or "-"),
        ("received", format_time(event.received_at) + " UTC"),
        ("status", event.status + (" (stale when handled)" if event.stale else "")),
        ("attempts", str(event.attempts)),
        ("next attempt" if waiting else "finished",
         format_time(event.next_attempt_at if waiting else event.finished_at)),
        ("handlers done", ", ".join(event.handlers_done) or "-"),
        ("answered", event.answer),
        ("dedup key", event.dedup_key),
        ("identity", event.identity or "- (only its bytes)"),
        ("source", "rebuilt by reconcile" if event.source == "reconcile" else "webhook"),
        ("last error", event.last_error or "-"),
    ])  # fmt: skip
    print_payload(console, event.body or b"", show_secrets=show_secrets)
    if not attempts:
        console.print("\nno attempts yet", style="dim")
        return
    console.print()
    print_table(
        console,
        ("#", "worker", "started (UTC)", "took", "outcome", "error"),
        (
            (str(a.number), a.worker, format_time(a.started_at),
             f"{(a.finished_at - a.started_at) * 1000:.0f} ms", a.outcome, a.error or "")
            for a in attempts
        ),
        title="attempts",
    )  # fmt: skip


@events.command("replay")
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--dead", is_flag=True, help="Replay every dead-lettered event.")
@click.option(
    "--all-handlers", is_flag=True, help="Run every handler again, also those that succeeded."
)
@store_option
def replay_events(
    event_ids: tuple[int, ...], dead: bool, all_handlers: bool, store_url: str
) -> None:
    """Handle events again (by id, or every dead one with --dead), with a fresh retry budget.

    Handlers that already succeeded for an event are not run again unless --all-handlers.
    """
    if bool(event_ids) == dead:
        raise click.UsageError("give event ids or --dead (not both)")

    async def work(store: Store) -> Any:
        now = datetime.now(UTC).timestamp()
        return await store.events.replay(
            None if dead else event_ids, now, all_handlers=all_handlers
        )

    result = run_with_store(store_url, work)
    if result.replayed:
        click.echo(
            f"replaying {len(result.replayed)} event(s): {', '.join(map(str, result.replayed))}"
        )
    elif dead:
        click.echo("no dead events")
    for event_id, reason in result.skipped.items():
        click.echo(f"event {event_id} not replayed: {reason}", err=True)
    if result.skipped and not result.replayed:
        sys.exit(1)
