"""The two payloads every benchmark uses: a ``Message`` event (about 1 KB) and a ``Chat Close``
event with a 50-message history (about 19 KB).

Load needs a distinct body per request (a store must never see a duplicate) without holding
hundreds of thousands of bodies in memory, so each payload is kept as a template split around a
marker, and :meth:`Payload.body` joins the parts around a counter.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from omnihook.contracts import format_date, samples

__all__ = ["PAYLOADS", "Payload", "close_event", "encode", "message_event"]

_COUNTER = "BENCH-COUNTER"
_ROOM = "BENCH-ROOM"
ROOMS = 500
"""Bodies spread over this many rooms, as traffic from many chats is."""


def message_event() -> dict[str, Any]:
    """A visitor's message, as Rocket.Chat sends it."""
    document = samples.sample("visitor-message")
    document.pop("crmData", None)
    return document


LARGE_MESSAGE_COUNT = 50

# Texts for the generated history, so that no two messages carry the same text.
_VISITOR_LINES = (
    "Hi, my order A-10042 has not arrived yet.",
    "Thanks! It was due on Monday, and today is already Friday.",
    "Could you check whether it left the warehouse at all?",
    "The tracking page still says 'label created' since Tuesday.",
    "I paid for express shipping, by the way, so this is a bit annoying.",
    "Is there anything I need to do on my side?",
    "My address is correct in the account, I checked it twice.",
    "OK, I will wait for the email then. Thanks for the quick answers!",
)
_AGENT_LINES = (
    "Hello Jane, let me check that for you.",
    "It is back in stock and ships today from our main warehouse.",
    "I can see the parcel was handed to the carrier this morning, around 8.",
    "I have upgraded the shipping at no cost for the delay.",
    "You should receive a tracking link by email within the hour.",
    "Sorry for the trouble, and thank you for your patience.",
    "Is there anything else I can help you with?",
)


def close_event(message_count: int = LARGE_MESSAGE_COUNT) -> dict[str, Any]:
    """A Chat Close event whose history holds ``message_count`` messages (50: about 19 KB).

    The history repeats the shapes of the sample's messages (visitor and agent lines, a file, an
    edited message) with distinct ids, texts and times, and ends with the sample's closing message.
    """
    document = samples.sample("chat-close")
    document.pop("crmData", None)
    history: list[dict[str, Any]] = document["messages"]
    closing = history[-1]
    shapes = history[:-1]
    start = datetime(2025, 3, 14, 9, 30, 4, 512000, tzinfo=UTC)
    messages: list[dict[str, Any]] = []
    for number in range(1, message_count):
        message = copy.deepcopy(shapes[(number - 1) % len(shapes)])
        ts = start + timedelta(seconds=number * 23, milliseconds=number * 137 % 1000)
        message["_id"] = f"mSg{number:03d}kQz7R"
        message["ts"] = format_date(ts)
        if "msg" in message:
            lines = _AGENT_LINES if "agentId" in message else _VISITOR_LINES
            message["msg"] = f"{lines[number % len(lines)]} ({number})"
        if "editedAt" in message:
            message["editedAt"] = format_date(ts + timedelta(seconds=21, milliseconds=619))
        message["_updatedAt"] = message.get("editedAt", message["ts"])
        messages.append(message)
    closing = copy.deepcopy(closing)
    closed_at = format_date(start + timedelta(seconds=message_count * 23))
    closing["_id"] = f"mSg{message_count:03d}kQz7R"
    closing["ts"] = closing["_updatedAt"] = closed_at
    messages.append(closing)
    document["messages"] = messages
    document["lastMessageAt"] = document["closedAt"] = closed_at
    return document


def encode(document: dict[str, Any]) -> bytes:
    """JSON as Rocket.Chat writes it (``JSON.stringify``: no spaces)."""
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Payload:
    name: str
    template: bytes
    """The JSON with ``%(counter)d`` and ``%(room)d`` where the distinct parts go."""
    rooms: int | None = ROOMS
    """Bodies spread over this many rooms; ``None``: each body a room of its own (a room closes
    once: Chat Close events of one room and one closing time are one event, and the store
    answers the others as duplicates, which is not the path to measure)."""

    @classmethod
    def of(cls, name: str, document: dict[str, Any], rooms: int | None = ROOMS) -> Payload:
        document = copy.deepcopy(document)
        document["messages"][0]["_id"] = _COUNTER  # the counter makes every body distinct
        document["_id"] = _ROOM
        for message in document["messages"]:
            message["rid"] = _ROOM
        text = json.dumps(document, separators=(",", ":")).replace("%", "%%")
        text = text.replace(_COUNTER, "m%(counter)d").replace(_ROOM, "room%(room)d")
        return cls(name, text.encode(), rooms)

    def body(self, counter: int) -> bytes:
        room = counter if self.rooms is None else counter % self.rooms
        return self.template % {b"counter": counter, b"room": room}

    @property
    def size(self) -> int:
        return len(self.body(0))


PAYLOADS = {
    "message": Payload.of("Message event", message_event()),
    "close": Payload.of("Chat Close, 50 messages", close_event(), rooms=None),
}
