"""The receiver ``omnihook serve`` runs when given no app: one readable log line per event."""

from __future__ import annotations

import logging

from omnihook.contracts import (
    AnyEvent,
    LivechatOfflineMessage,
    LivechatSession,
    LivechatSessionForwarded,
    MessageEvent,
    RoomEvent,
    UnknownEvent,
)
from omnihook.store import escape_controls

from .router import HandlerContext, Router

__all__ = ["describe", "logging_router"]

logger = logging.getLogger("omnihook.events")

_MAX_TEXT = 80


def describe(event: AnyEvent) -> str:
    """One line that says what happened: kind, room, visitor, and the gist of the event.

    One line whatever the visitor typed: control characters in names and messages are escaped
    (``\\n``), so that no payload can forge a log line.
    """
    return escape_controls(_describe(event))


def _describe(event: AnyEvent) -> str:
    if isinstance(event, UnknownEvent):
        room = f" room={event.room_id}" if event.room_id else ""
        return f"{event.type} (unknown type){room}"
    if isinstance(event, LivechatOfflineMessage):
        who = _person(event.visitor.name, event.visitor.first_email)
        return f"Offline message from {who}: {_quote(event.message or '')}"
    assert isinstance(event, RoomEvent)
    who = _person(event.visitor.display_name, event.visitor.first_email)
    head = f"{_label(event)} room={event.room_id} visitor={who}"
    if event.agent is not None:
        head += f" agent={event.agent.username}"
    if isinstance(event, MessageEvent):
        message = event.message
        return f"{head}: {_quote(message.text if message else '')}"
    if isinstance(event, LivechatSessionForwarded):
        source = (
            f"department {event.old_department_id}"
            if event.to_department
            else (
                event.old_served_by.username or event.old_served_by.id
                if event.old_served_by
                else "?"
            )
        )
        return f"{head} from={source} messages={len(event.messages)}"
    if isinstance(event, LivechatSession):
        return f"{head} closer={event.closer or '?'} messages={len(event.messages)}"
    return f"{head} messages={len(event.messages)}"


def _label(event: RoomEvent) -> str:
    if isinstance(event, MessageEvent):
        if event.is_navigation:
            return "Navigation"
        return "Agent message" if event.is_agent_message else "Visitor message"
    assert event.event_type is not None
    return event.event_type.label


def _person(name: str | None, email: str | None) -> str:
    shown = f'"{name}"' if name else "(no name)"
    return f"{shown} <{email}>" if email else shown


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    return f'"{text}"'


def logging_router() -> Router:
    """A router that logs every event at INFO on ``omnihook.events`` (the app logs Send Tests)."""
    router = Router()

    @router.on_any
    async def log_event(event: AnyEvent, context: HandlerContext) -> None:
        stale = " (stale: the room is further along already)" if context.stale else ""
        logger.info("%s%s", describe(event), stale)

    return router
