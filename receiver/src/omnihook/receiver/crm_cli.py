"""``omnihook contacts`` and ``omnihook conversations``: the SQL CRM's customer record."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from omnihook.store import (
    ContactRow,
    ConversationListing,
    ConversationRow,
    MessageRecord,
    Store,
)
from omnihook.store.cli import (
    format_time,
    listing_options,
    print_details,
    print_table,
    run_with_store,
    store_option,
)

__all__ = ["contacts", "conversations"]


@click.group()
def contacts() -> None:
    """People the SQL CRM knows, from every chat and offline message."""


@contacts.command("list")
@click.option(
    "--search", metavar="TEXT", help="Only contacts whose name, email or phone contains TEXT."
)
@listing_options
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


@conversations.command("list")
@click.option(
    "--status",
    metavar="STATUS",
    help="Only conversations in this state (open, queued, closed, ...).",
)
@click.option(
    "--search",
    metavar="TEXT",
    help="Only conversations whose room id, contact name or email contains TEXT.",
)
@listing_options
@store_option
def list_conversations(
    status: str | None, search: str | None, limit: int, as_json: bool, store_url: str
) -> None:
    """The most recently updated conversations first, with their contact and message count."""

    async def work(store: Store) -> list[ConversationListing]:
        return await store.sql_crm.conversations(limit, status, search)

    found = run_with_store(store_url, work)
    if as_json:
        for item in found:
            click.echo(json.dumps(_summary(item)))
        return
    if not found:
        where = (f" with status {status}" if status else "") + (
            f" matching {search!r}" if search else ""
        )
        click.echo(f"no conversations yet{where}")
        return
    print_table(
        Console(),
        ("room", "status", "contact", "agent", "messages", "started (UTC)", "updated (UTC)",
         "last event"),
        (_cells(item) for item in found),
    )  # fmt: skip


def _summary(item: ConversationListing) -> dict[str, Any]:
    v = item.conversation
    return {
        "room_id": v.room_id,
        "status": v.status,
        "contact_id": item.contact_id,
        "contact_name": item.contact_name,
        "contact_email": item.contact_email,
        "agent": v.agent,
        "department_id": v.department_id,
        "tags": v.tags,
        "custom_fields": v.custom_fields,
        "messages": item.messages,
        "started_at": format_time(v.started_at),
        "closed_at": format_time(v.closed_at),
        "closer": v.closer,
        "last_event": v.last_event,
        "updated_at": format_time(v.updated_at),
    }


def _cells(item: ConversationListing) -> tuple[str, ...]:
    v = item.conversation
    who = "-"
    if item.contact_id is not None:
        who = (item.contact_name or "(no name)") + (
            f" <{item.contact_email}>" if item.contact_email else ""
        )
    return (
        v.room_id,
        v.status + (f", closed by {v.closer}" if v.closer else ""),
        who,
        v.agent or "-",
        str(item.messages),
        format_time(v.started_at),
        format_time(v.updated_at),
        v.last_event,
    )


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
