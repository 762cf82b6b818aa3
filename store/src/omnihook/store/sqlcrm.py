"""The embedded SQL CRM's tables: contacts, conversations and their messages, in the store's own
database, so that a receiver with no CRM configured still keeps a browsable customer record."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .batching import Batcher
from .database import Database, Tx
from .errors import one_item_may_be_at_fault
from .keys import bounded_key

__all__ = [
    "ContactRecord",
    "ContactRow",
    "ConversationListing",
    "ConversationRecord",
    "ConversationRow",
    "MessageRecord",
    "SqlCrm",
]


@dataclass(frozen=True)
class ContactRecord:
    """A person as an event shows them; ``None`` fields keep what was known."""

    contact_key: str
    """The visitor's id, or ``email:<address>`` for offline messages (no visitor id)."""
    visitor_id: str | None = None
    username: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    department: str | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationRecord:
    """A room as an event shows it; ``None`` fields keep what was known."""

    room_id: str
    status: str | None = None
    department_id: str | None = None
    agent: str | None = None
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = None
    started_at: float | None = None
    closed_at: float | None = None
    closer: str | None = None
    last_event: str = ""


@dataclass(frozen=True)
class MessageRecord:
    """One message of a conversation."""

    message_key: str
    ts: float
    author: str
    author_kind: str
    """``visitor``, ``agent`` or ``system``."""
    text: str
    edited: bool = False


@dataclass(frozen=True)
class ContactRow:
    id: int
    contact_key: str
    name: str | None
    email: str | None
    phone: str | None
    department: str | None
    custom_fields: dict[str, Any]
    first_seen: float
    last_seen: float
    conversations: int


@dataclass(frozen=True)
class ConversationRow:
    room_id: str
    status: str
    department_id: str | None
    agent: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    started_at: float | None
    closed_at: float | None
    closer: str | None
    last_event: str
    updated_at: float


@dataclass(frozen=True)
class ConversationListing:
    """A conversation as a list shows it: with its contact's name and email and its number of
    messages."""

    conversation: ConversationRow
    contact_id: int | None
    contact_name: str | None
    contact_email: str | None
    messages: int


_CONTACT_FIELDS = (
    "visitor_id",
    "username",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "department",
)


@dataclass(frozen=True)
class _Record:
    contact: ContactRecord | None
    conversation: ConversationRecord | None
    messages: list[MessageRecord]
    now: float


class SqlCrm:
    """Reads and writes the SQL CRM tables."""

    def __init__(self, database: Database, max_batch: int = 256) -> None:
        self.database = database
        # Concurrent records share commits (each in order, as if alone): one commit per event
        # made the SQL CRM, not handling, the limit of a worker.
        self._records: Batcher[_Record, int | None] = Batcher(
            self._record_batch,
            max_batch,
            database.write_concurrency,
            isolate=one_item_may_be_at_fault,
        )

    async def close(self) -> None:
        await self._records.close()

    async def record(
        self,
        contact: ContactRecord | None,
        conversation: ConversationRecord | None,
        messages: list[MessageRecord],
        now: float,
    ) -> int | None:
        """Upsert what an event shows, in one transaction (shared with concurrent calls);
        returns the contact's id.

        Keys (contact key, email, room, message id) too long for an index are kept shortened
        (:func:`~omnihook.store.keys.bounded_key`).
        """
        if contact is not None:
            contact = dataclasses.replace(
                contact,
                contact_key=bounded_key(contact.contact_key),
                email=bounded_key(contact.email),
            )
        if conversation is not None:
            conversation = dataclasses.replace(
                conversation, room_id=bounded_key(conversation.room_id)
            )
        messages = [
            dataclasses.replace(message, message_key=bounded_key(message.message_key))
            for message in messages
        ]
        return await self._records.submit(_Record(contact, conversation, messages, now))

    async def _record_batch(self, batch: list[_Record]) -> list[int | None]:
        return await self.database.run(
            lambda tx: [_record(tx, r.contact, r.conversation, r.messages, r.now) for r in batch]
        )

    async def contacts(self, limit: int = 50, search: str | None = None) -> list[ContactRow]:
        """Contacts, the most recently seen first; ``search`` matches name, email or phone."""

        def work(tx: Tx) -> list[ContactRow]:
            where, params = "", []
            if search:
                where = "WHERE c.name LIKE ? OR c.email LIKE ? OR c.phone LIKE ?"
                params = [f"%{search}%"] * 3
            rows = tx.execute(
                "SELECT c.id, c.contact_key, c.name, c.email, c.phone, c.department, c.custom_fields, "
                "c.first_seen, c.last_seen, (SELECT COUNT(*) FROM crm_conversations AS v "
                f"WHERE v.contact_id = c.id) FROM crm_contacts AS c {where} "
                "ORDER BY c.last_seen DESC, c.id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [_contact_row(row) for row in rows]

        return await self.database.run(work)

    async def conversations(
        self, limit: int = 50, status: str | None = None, search: str | None = None
    ) -> list[ConversationListing]:
        """Conversations, the most recently updated first; ``status`` keeps one state,
        ``search`` matches the room id, the contact's name or email."""

        def work(tx: Tx) -> list[ConversationListing]:
            conditions, params = [], []
            if status:
                conditions.append("v.status = ?")
                params.append(status)
            if search:
                conditions.append("(v.room_id LIKE ? OR c.name LIKE ? OR c.email LIKE ?)")
                params += [f"%{search}%"] * 3
            where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
            rows = tx.execute(
                f"SELECT {_CONVERSATION_COLUMNS}, c.id, c.name, c.email, (SELECT COUNT(*) FROM "
                "crm_messages AS m WHERE m.room_id = v.room_id) FROM crm_conversations AS v "
                f"LEFT JOIN crm_contacts AS c ON c.id = v.contact_id {where}"
                "ORDER BY v.updated_at DESC, v.room_id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [
                ConversationListing(_conversation_row(row), row[11], row[12], row[13], int(row[14]))
                for row in rows
            ]

        return await self.database.run(work)

    async def conversation(
        self, room_id: str
    ) -> tuple[ConversationRow, ContactRow | None, list[MessageRecord]] | None:
        """A conversation with its contact and messages (oldest first), or ``None``."""
        key = bounded_key(room_id)

        def work(tx: Tx) -> tuple[ConversationRow, ContactRow | None, list[MessageRecord]] | None:
            row = tx.execute(
                f"SELECT {_CONVERSATION_COLUMNS}, v.contact_id FROM crm_conversations AS v "
                "WHERE v.room_id = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            conversation = _conversation_row(row)
            contact = None
            if row[11] is not None:
                found = tx.execute(
                    "SELECT c.id, c.contact_key, c.name, c.email, c.phone, c.department, "
                    "c.custom_fields, c.first_seen, c.last_seen, (SELECT COUNT(*) FROM "
                    "crm_conversations AS v WHERE v.contact_id = c.id) FROM crm_contacts AS c "
                    "WHERE c.id = ?",
                    (row[11],),
                ).fetchone()
                contact = _contact_row(found) if found else None
            messages = [
                MessageRecord(message_key, ts, author, kind, text, bool(edited))
                for message_key, ts, author, kind, text, edited in tx.execute(
                    "SELECT message_key, ts, author, author_kind, text, edited FROM crm_messages "
                    "WHERE room_id = ? ORDER BY ts, message_key",
                    (key,),
                ).fetchall()
            ]
            return conversation, contact, messages

        return await self.database.run(work)


def _record(
    tx: Tx,
    contact: ContactRecord | None,
    conversation: ConversationRecord | None,
    messages: list[MessageRecord],
    now: float,
) -> int | None:
    contact_id = _upsert_contact(tx, contact, now) if contact is not None else None
    if conversation is not None:
        _upsert_conversation(tx, conversation, contact_id, now)
        if len({message.message_key for message in messages}) < len(messages):
            # A history that names a message twice: one at a time, in order (a statement may
            # not touch a row twice).
            for message in messages:
                _upsert_messages(tx, conversation.room_id, [message])
        else:
            # Many at a time: a close carries the whole history, and on PostgreSQL each
            # statement is a round trip.
            for start in range(0, len(messages), _MESSAGES_PER_STATEMENT):
                _upsert_messages(
                    tx, conversation.room_id, messages[start : start + _MESSAGES_PER_STATEMENT]
                )
    return contact_id


_MESSAGES_PER_STATEMENT = 1000
"""Seven parameters each: well under SQLite's 32,766 and PostgreSQL's 65,535."""


def _upsert_messages(tx: Tx, room_id: str, messages: list[MessageRecord]) -> None:
    if not messages:
        return
    tx.execute(
        "INSERT INTO crm_messages (room_id, message_key, ts, author, author_kind, text, edited) "
        "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(messages))
        + """ ON CONFLICT (room_id, message_key) DO UPDATE SET text = excluded.text,
                  edited = excluded.edited, author = excluded.author
              -- An edit is never undone by the message as first written arriving later
              -- (a late delivery, an event rebuilt by reconcile).
              WHERE excluded.edited >= crm_messages.edited""",
        [value for message in messages
         for value in (room_id, message.message_key, message.ts, message.author,
                       message.author_kind, message.text, int(message.edited))],
    )  # fmt: skip


def _upsert_contact(tx: Tx, contact: ContactRecord, now: float) -> int:
    tx.execute(
        "INSERT INTO crm_contacts (contact_key, first_seen, last_seen) VALUES (?, ?, ?) "
        "ON CONFLICT (contact_key) DO NOTHING",
        (contact.contact_key, now, now),
    )
    row = tx.execute(
        f"SELECT id, custom_fields FROM crm_contacts WHERE contact_key = ?{tx.for_update}",
        (contact.contact_key,),
    ).fetchone()
    assert row is not None
    contact_id, known_fields = int(row[0]), json.loads(row[1])
    values = {name: getattr(contact, name) for name in _CONTACT_FIELDS}
    assignments = ", ".join(f"{name} = COALESCE(?, {name})" for name in _CONTACT_FIELDS)
    tx.execute(
        f"UPDATE crm_contacts SET {assignments}, custom_fields = ?, last_seen = ? WHERE id = ?",
        (*values.values(), json.dumps({**known_fields, **contact.custom_fields}, ensure_ascii=False),
         now, contact_id),
    )  # fmt: skip
    return contact_id


def _upsert_conversation(
    tx: Tx, conversation: ConversationRecord, contact_id: int | None, now: float
) -> None:
    tx.execute(
        "INSERT INTO crm_conversations (room_id, status, last_event, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (room_id) DO NOTHING",
        (conversation.room_id, conversation.status or "open", conversation.last_event, now),
    )
    tags = json.dumps(conversation.tags) if conversation.tags is not None else None
    custom = (
        json.dumps(conversation.custom_fields, ensure_ascii=False)
        if conversation.custom_fields is not None
        else None
    )
    tx.execute(
        """UPDATE crm_conversations SET contact_id = COALESCE(?, contact_id), status = COALESCE(?, status),
               department_id = COALESCE(?, department_id), agent = COALESCE(?, agent),
               tags = COALESCE(?, tags), custom_fields = COALESCE(?, custom_fields),
               started_at = COALESCE(started_at, ?), closed_at = COALESCE(?, closed_at),
               closer = COALESCE(?, closer), last_event = ?, updated_at = ?
           WHERE room_id = ?""",
        (contact_id, conversation.status, conversation.department_id, conversation.agent, tags, custom,
         conversation.started_at, conversation.closed_at, conversation.closer, conversation.last_event,
         now, conversation.room_id),
    )  # fmt: skip


_CONVERSATION_COLUMNS = (
    "v.room_id, v.status, v.department_id, v.agent, v.tags, v.custom_fields, v.started_at, "
    "v.closed_at, v.closer, v.last_event, v.updated_at"
)


def _conversation_row(row: tuple[Any, ...]) -> ConversationRow:
    """The first eleven columns of a row read with ``_CONVERSATION_COLUMNS``."""
    return ConversationRow(
        row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), *row[6:11]
    )


def _contact_row(row: tuple[Any, ...]) -> ContactRow:
    return ContactRow(
        id=int(row[0]),
        contact_key=str(row[1]),
        name=row[2],
        email=row[3],
        phone=row[4],
        department=row[5],
        custom_fields=json.loads(row[6]),
        first_seen=float(row[7]),
        last_seen=float(row[8]),
        conversations=int(row[9]),
    )
