"""``omnihook contacts`` and ``omnihook conversations``: the SQL CRM's customer record."""

from __future__ import annotations

import json

import click
from rich.console import Console

from omnihook.store import ContactRow, ConversationRow, MessageRecord, Store
from omnihook.store.cli import format_time, print_details, print_table, run_with_store, store_option

__all__ = ["contacts", "conversations"]


@click.group()
def contacts() -> None:
    """People the SQL CRM knows, from every chat and offline message."""


@contacts.command("list")
@click.option(
    "--search", metavar="TEXT", help="Only contacts whose name, email or phone contains TEXT."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
)
@store_option
def list_contacts(search: str | None, limit: int, as_json: bool, store_url: str) -> None:
    """The most recently seen contacts first."""

    async def work(store: Store) -> list[ContactRow]:
        return await store.sql_crm.contacts(limit=limit, search=search)

    found = run_with_store(store_url, work)
    if as_json:
        for row in found:
            click.echo(json.dumps({"id": row.id, "name": row.name, "email": row.email, "phone": row.phone,
                                   "department": row.department, "custom_fields": row.custom_fields,
                                   "conversations": row.conversations, "last_seen": format_time(row.last_seen)}))  # fmt: skip
        return
    console = Console()
    if not found:
        click.echo("no contacts yet" + (f" matching {search!r}" if search else ""))
        return
    print_table(
        console,
        ("id", "name", "email", "phone", "chats", "last seen (UTC)", "custom fields"),
        ((str(r.id), r.name or "-", r.email or "-", r.phone or "-", str(r.conversations),
          format_time(r.last_seen), ", ".join(f"{k}={v}" for k, v in r.custom_fields.items()))
         for r in found),
    )  # fmt: skip


@click.group()
def conversations() -> None:
    """Chats the SQL CRM keeps, with their messages."""


@conversations.command("show")
@click.argument("room_id")
@store_option
def show_conversation(room_id: str, store_url: str) -> None:
    """One chat: its state, its contact and every message."""

    async def work(
        store: Store,
    ) -> tuple[ConversationRow, ContactRow | None, list[MessageRecord]] | None:
        return await store.sql_crm.conversation(room_id)

    found = run_with_store(store_url, work)
    if found is None:
        raise click.ClickException(f"no conversation {room_id}")
    conversation, contact, messages = found
    console = Console()
    who = "-"
    if contact is not None:
        who = (
            f"{contact.name or '(no name)'}"
            + (f" <{contact.email}>" if contact.email else "")
            + f" (contact {contact.id})"
        )
    print_details(console, [
        ("room", conversation.room_id),
        ("contact", who),
        ("status", conversation.status + (f", closed by {conversation.closer}" if conversation.closer else "")),
        ("agent", conversation.agent or "-"),
        ("department", conversation.department_id or "-"),
        ("tags", ", ".join(conversation.tags) or "-"),
        ("started", format_time(conversation.started_at)),
        ("closed", format_time(conversation.closed_at) or "-"),
        ("last event", f"{conversation.last_event} at {format_time(conversation.updated_at)} UTC"),
    ])  # fmt: skip
    console.print()
    print_table(
        console,
        ("time (UTC)", "from", "message"),
        ((format_time(m.ts), f"{m.author} ({m.author_kind})", m.text + (" (edited)" if m.edited else ""))
         for m in messages),
        title=f"{len(messages)} message(s)",
    )  # fmt: skip
