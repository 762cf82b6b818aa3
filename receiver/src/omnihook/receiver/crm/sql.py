"""The SQL CRM: contacts, conversations and messages kept in the store's own database.

The embedded default: with no CRM configured, ``omnihook serve`` already turns Rocket.Chat
traffic into a browsable customer record (``omnihook contacts list``, ``omnihook conversations
show ROOM``). Every event type is recorded; stale events add the messages they carry but do not
move a conversation's status, agent, department or tags back, and a message as first written
never undoes its edit.
"""

from __future__ import annotations

import time
from typing import Any

from omnihook.contracts import (
    AnyEvent,
    EventType,
    LivechatOfflineMessage,
    LivechatSession,
    LivechatSessionForwarded,
    RoomEvent,
)
from omnihook.store import ContactRecord, ConversationRecord, MessageRecord, Store

from ..router import HandlerContext
from .base import CrmAdapter, Person, person_of

__all__ = ["SqlCrmAdapter"]

_STATUS = {
    EventType.CHAT_START: "open",
    EventType.CHAT_QUEUED: "queued",
    EventType.CHAT_TAKEN: "served",
    EventType.CHAT_FORWARDED: "served",
    EventType.CHAT_CLOSE: "closed",
}


class SqlCrmAdapter(CrmAdapter):
    kind = "sql"

    def __init__(self, store: Store, name: str = "sql") -> None:
        super().__init__(name, links=store.crm_links)
        self.store = store

    @property
    def events(self) -> frozenset[EventType]:
        return frozenset(EventType)

    async def handle(self, event: AnyEvent, context: HandlerContext) -> dict[str, Any] | None:
        person = person_of(event)
        if person is None or person.key is None:
            return None
        contact = _contact(person)
        if isinstance(event, LivechatOfflineMessage):
            sent = event.sent_at.timestamp() if event.sent_at else time.time()
            conversation = ConversationRecord(
                room_id=f"offline:{person.key}:{int(sent)}", status="offline", started_at=sent,
                last_event=event.type,
            )  # fmt: skip
            messages = [MessageRecord("offline", sent, person.name or person.email or "visitor", "visitor",
                                      event.message or "")]  # fmt: skip
        else:
            assert isinstance(event, RoomEvent)
            conversation = _conversation(event, context.stale)
            messages = [_message(event, index) for index in range(len(event.messages))]
        contact_id = await self.store.sql_crm.record(contact, conversation, messages, time.time())
        return {self.name: {"contactId": contact_id}} if contact_id is not None else None


def _contact(person: Person) -> ContactRecord:
    assert person.key is not None
    return ContactRecord(
        contact_key=person.key,
        visitor_id=person.visitor_id,
        username=person.username,
        name=person.name,
        first_name=person.first_name or None,
        last_name=person.last_name,
        email=person.email,
        phone=person.phone,
        department=person.department,
        custom_fields=dict(person.custom_fields),
    )


def _conversation(event: RoomEvent, stale: bool) -> ConversationRecord:
    status = None if stale or event.event_type is None else _STATUS.get(event.event_type)
    if isinstance(event, LivechatSessionForwarded) and event.to_department and not stale:
        status = "queued"
    closed_at = closer = None
    if isinstance(event, LivechatSession):
        closed_at = event.closed_at.timestamp() if event.closed_at else None
        closer = event.closer
    # A stale event (older than what was handled: a late delivery, a rebuilt one) tells the
    # conversation's messages and dates, not its present state: who serves it, where, its tags.
    current = not stale
    return ConversationRecord(
        room_id=event.room_id,
        status=status,
        department_id=getattr(event, "department_id", None) if current else None,
        agent=event.agent.username if event.agent and current else None,
        tags=list(event.tags) if event.tags is not None and current else None,
        custom_fields=event.custom_fields if current else None,
        started_at=event.created_at.timestamp(),
        closed_at=closed_at,
        closer=closer,
        last_event=event.type,
    )


def _message(event: RoomEvent, index: int) -> MessageRecord:
    message = event.messages[index]
    kind = "agent" if message.is_from_agent else "visitor"
    if message.is_closing or message.is_navigation:  # written by Rocket.Chat, not a person
        kind = "agent" if message.is_from_agent else "system"
    return MessageRecord(
        message_key=message.id or f"{message.ts.timestamp():.3f}:{message.username}",
        ts=message.ts.timestamp(),
        author=message.author_name
        if message.u
        else (event.visitor.name if kind == "visitor" and event.visitor.name else message.username),
        author_kind=kind,
        text=message.text,
        edited=message.edited_at is not None,
    )
