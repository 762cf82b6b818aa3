"""Where an event sits in its room's story, to flag events older than what was already handled.

Rocket.Chat fires webhooks without waiting and retries them later, so a room's events can arrive
out of order (a Queued after the Taken, rocketchat#17661). Handling keeps arrival order; an event
that describes an older state of the room than one already handled is flagged ``stale`` instead,
so that a handler does not, say, set a CRM record back to "queued".

Two watermarks per room, advanced by every handled event that is not stale:

- the lifecycle stage: start (0) < queued (1) < taken, forwarded to an agent (2) < closed,
  edited (3); a forward to a department puts the room back in the queue (1);
- the time of the newest message seen in any handled event.

An event is stale when its stage is below the room's, or (a message event) when its message is
older than the newest message already handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from omnihook.contracts import (
    AnyEvent,
    EventType,
    LivechatSessionForwarded,
    MessageEvent,
    RoomEvent,
)

__all__ = ["Position", "is_stale", "position_of"]

_STAGES = {
    EventType.CHAT_START: 0,
    EventType.CHAT_QUEUED: 1,
    EventType.CHAT_TAKEN: 2,
    EventType.CHAT_FORWARDED: 2,
    EventType.CHAT_CLOSE: 3,
    EventType.CHAT_EDIT: 3,
}


@dataclass(frozen=True)
class Position:
    """An event's place in its room's story."""

    stage: int | None
    """Lifecycle stage, ``None`` for events that do not move the lifecycle (messages, leads)."""
    newest_message_at: float | None
    """Unix time of the newest message the event carries."""


def position_of(event: AnyEvent) -> Position:
    if not isinstance(event, RoomEvent):
        return Position(None, None)
    stage = _STAGES.get(event.event_type) if event.event_type is not None else None
    if isinstance(event, LivechatSessionForwarded) and event.to_department:
        stage = 1
    newest = max((message.ts.timestamp() for message in event.messages), default=None)
    return Position(stage, newest)


def is_stale(event: AnyEvent, room_stage: int | None, room_newest_message_at: float | None) -> bool:
    """Whether ``event`` is older than what the room's handled events have shown."""
    position = position_of(event)
    if position.stage is not None and room_stage is not None and position.stage < room_stage:
        return True
    return (
        isinstance(event, MessageEvent)
        and position.newest_message_at is not None
        and room_newest_message_at is not None
        and position.newest_message_at < room_newest_message_at
    )
