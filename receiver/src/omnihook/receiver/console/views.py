"""What the console's pages show of stored events and rooms, read from their bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from omnihook.store import RoomSummary, StoredEvent

__all__ = ["EventView", "chat_row", "event_view", "transcript"]

_STAGES = {0: "started", 1: "queued", 2: "served", 3: "closed"}


@dataclass(frozen=True)
class EventView:
    id: int
    type: str
    status: str
    received_at: float
    room_id: str | None
    stale: bool
    rebuilt: bool
    attempts: int
    handlers_done: tuple[str, ...]
    last_error: str | None
    answer: str
    body: bytes | None
    summary: str

    def live(self) -> dict[str, Any]:
        """What the live view shows of it (JSON for the event stream)."""
        return {"id": self.id, "type": self.type, "status": self.status, "room": self.room_id,
                "received_at": self.received_at, "summary": self.summary}  # fmt: skip


def _document(body: bytes | None) -> dict[str, Any]:
    try:
        found = json.loads(body) if body else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _name(person: Any) -> str:
    if not isinstance(person, dict):
        return ""
    return str(person.get("name") or person.get("username") or "")


def event_view(event: StoredEvent) -> EventView:
    document = _document(event.body)
    visitor, agent = _name(document.get("visitor")), _name(document.get("agent"))
    messages = document.get("messages") if isinstance(document.get("messages"), list) else []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    summary = " · ".join(part for part in (
        visitor and f"visitor {visitor}", agent and f"agent {agent}",
        document.get("type") == "Message" and str(last.get("msg") or "")[:120],
    ) if part)  # fmt: skip
    return EventView(
        id=event.id, type=event.type, status=event.status, received_at=event.received_at,
        room_id=event.room_id, stale=bool(event.stale), rebuilt=event.source == "reconcile",
        attempts=event.attempts, handlers_done=event.handlers_done, last_error=event.last_error,
        answer=event.answer, body=event.body, summary=summary,
    )  # fmt: skip


def chat_row(room: RoomSummary) -> dict[str, Any]:
    """One row of the chats list: the room as its newest event tells it."""
    document = _document(room.newest.body if room.newest else None)
    department = document.get("departmentId") or ""
    return {
        "room_id": room.room_id,
        "visitor": _name(document.get("visitor")),
        "agent": _name(document.get("agent")),
        "department": department,
        "state": _STAGES.get(room.stage, "") if room.stage is not None else "",
        "last_type": room.newest.type if room.newest else "",
        "last_at": room.newest.received_at if room.newest else room.updated_at,
        "crm": sorted(room.crm_data) if isinstance(room.crm_data, dict) else [],
    }


def transcript(events: list[StoredEvent]) -> list[dict[str, str]]:
    """The conversation as the visitor and agent saw it: the longest history any of the room's
    events carried, then messages only later events added."""
    seen: dict[str, dict[str, str]] = {}
    for event in sorted(events, key=lambda e: e.id):
        messages = _document(event.body).get("messages")
        for message in messages if isinstance(messages, list) else []:
            if not isinstance(message, dict) or not message.get("_id"):
                continue
            found = message.get("u")
            author: dict[str, Any] = found if isinstance(found, dict) else {}
            seen[str(message["_id"])] = {
                "ts": str(message.get("ts") or ""),
                "author": str(
                    author.get("name") or author.get("username") or message.get("username") or ""
                ),
                "kind": "visitor" if message.get("token") else "agent",
                "text": str(message.get("msg") or ""),
                "edited": "edited" if message.get("editedAt") else "",
            }
    return sorted(seen.values(), key=lambda m: m["ts"])
