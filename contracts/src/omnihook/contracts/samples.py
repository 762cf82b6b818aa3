"""Canonical payloads: one realistic event per kind, and the Send Test sample exactly as built.

The realistic samples tell one chat, in the shape current Rocket.Chat versions send (emails and
phones as lists of objects, messages with ``u``, ``_id``, ``rid`` and ``_updatedAt``, keys in
Rocket.Chat's order). Every call returns a fresh copy that may be changed freely.

>>> from omnihook.contracts import samples
>>> samples.sample("chat-close")["type"]
'LivechatSession'
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from .dates import format_date, utc_now
from .event_type import EventType
from .events import SEND_TEST_ROOM_ID

__all__ = ["SAMPLE_NAMES", "all_samples", "sample", "send_test_sample"]

_ROOM = "hX4Lq2rNwPZ8Kc7Ry"
_VISITOR_ID = "5xRbK8TfWq3pLmN2v"
_AGENT_ID = "aG3ntSm1thX9kQ4Zt"
_OTHER_AGENT_ID = "bR0wnJ7rT2vLq8Hn"
_DEPARTMENT = "sUpp0rtD3ptKq1Lw"
_SALES_DEPARTMENT = "s4L3sD3ptMn8Vb2Q"

_VISITOR = {
    "_id": _VISITOR_ID,
    "token": "iNs5bWkQz1gD7tHcP",
    "name": "Jane Doe",
    "username": "guest-1042",
    "department": _DEPARTMENT,
    "ip": "203.0.113.5",
    "os": "Mac OS 10.15.7",
    "browser": "Chrome 131.0.0.0",
    "customFields": {"plan": "pro", "orderId": "A-10042"},
    "email": [{"address": "jane.doe@example.com"}],
    "phone": [{"phoneNumber": "+15551234567"}],
}
_AGENT = {
    "_id": _AGENT_ID,
    "username": "agent.smith",
    "name": "Agent Smith",
    "customFields": {},
    "email": "smith@support.example.com",
}
_OTHER_AGENT = {
    "_id": _OTHER_AGENT_ID,
    "username": "emma.brown",
    "name": "Emma Brown",
    "customFields": {},
    "email": "emma@support.example.com",
}


def _user(user_id: str, username: str, name: str) -> dict[str, str]:
    return {"_id": user_id, "username": username, "name": name}


def _message(
    number: int,
    ts: str,
    text: str | None,
    *,
    agent: dict[str, Any] | None = None,
    edited_at: str | None = None,
    file_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A history entry with the keys, and the key order, of Rocket.Chat's ``sendToCRM``."""
    author = (
        _user(agent["_id"], agent["username"], agent["name"])
        if agent
        else _user(_VISITOR_ID, "guest-1042", "Jane Doe")
    )
    message: dict[str, Any] = {
        "u": author,
        "_id": f"mSg{number:03d}kQz7R",
        "username": author["username"],
    }
    if text is not None:
        message["msg"] = text
    message["ts"] = ts
    message["rid"] = _ROOM
    if edited_at:
        message["editedAt"] = edited_at
    if agent:
        message["agentId"] = agent["_id"]
    if file_fields:
        message.update(file_fields)
    message["_updatedAt"] = edited_at or ts
    return message


_HISTORY_BEFORE_TAKEN = [
    _message(1, "2025-03-14T09:30:04.512Z", "Hi, my order A-10042 has not arrived yet."),
]
_HISTORY_AFTER_TAKEN = [
    *_HISTORY_BEFORE_TAKEN,
    _message(
        2,
        "2025-03-14T09:31:10.207Z",
        "Hello Jane, let me check that for you.",
        agent=_AGENT,
    ),
    _message(3, "2025-03-14T09:31:45.880Z", "Thanks! It was due on Monday."),
]
_FILE_MESSAGE = _message(
    4,
    "2025-03-14T09:33:02.114Z",
    None,
    file_fields={
        "file": {
            "_id": "f1L3uPl0aDk9Qw",
            "name": "receipt.pdf",
            "type": "application/pdf",
            "size": 48213,
        },
        "attachments": [
            {
                "title": "receipt.pdf",
                "title_link": "/file-upload/f1L3uPl0aDk9Qw/receipt.pdf",
                "type": "file",
                "format": "PDF",
                "size": 48213,
            }
        ],
        "fileUpload": {
            "publicFilePath": "https://chat.example.com/file-upload/f1L3uPl0aDk9Qw/receipt.pdf?token=eyJhbGciOi",
            "type": "application/pdf",
            "size": 48213,
        },
    },
)
_EDITED_MESSAGE = _message(
    5,
    "2025-03-14T09:34:20.031Z",
    "It is back in stock and ships today.",
    agent=_OTHER_AGENT,
    edited_at="2025-03-14T09:34:41.650Z",
)
_CLOSING_MESSAGE = {
    "u": _user(_OTHER_AGENT_ID, "emma.brown", "Emma Brown"),
    "_id": "mSg006kQz7R",
    "username": "emma.brown",
    "msg": "Order shipped, tracking number sent by email.",
    "ts": "2025-03-14T09:36:00.000Z",
    "rid": _ROOM,
    "agentId": _OTHER_AGENT_ID,
    "closingMessage": True,
    "_updatedAt": "2025-03-14T09:36:00.000Z",
}
_FULL_HISTORY = [
    *_HISTORY_AFTER_TAKEN,
    _FILE_MESSAGE,
    _EDITED_MESSAGE,
    _CLOSING_MESSAGE,
]


def _room(
    *,
    type_: str,
    messages: list[dict[str, Any]],
    last_message_at: str,
    agent: dict[str, Any] | None,
    crm_data: str | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    room: dict[str, Any] = {
        "_id": _ROOM,
        "label": "Jane Doe",
        "createdAt": "2025-03-14T09:30:02.318Z",
        "lastMessageAt": last_message_at,
    }
    if tags:
        room["tags"] = tags
    room["customFields"] = {"orderId": "A-10042"}
    room["visitor"] = _VISITOR
    if agent:
        room["agent"] = agent
    if crm_data:
        room["crmData"] = crm_data
    room["type"] = type_
    room["messages"] = messages
    return room


_CRM_DATA = '{"ok":true,"contactId":"crm-7731"}'

_SAMPLES: dict[str, dict[str, Any]] = {
    "chat-start": {
        **_room(
            type_="LivechatSessionStart",
            messages=_HISTORY_BEFORE_TAKEN,
            last_message_at="2025-03-14T09:30:04.512Z",
            agent=None,
        ),
        "departmentId": _DEPARTMENT,
    },
    "chat-queued": {
        **_room(
            type_="LivechatSessionQueued",
            messages=_HISTORY_BEFORE_TAKEN,
            last_message_at="2025-03-14T09:30:04.512Z",
            agent=None,
            crm_data=_CRM_DATA,
        ),
        "departmentId": _DEPARTMENT,
    },
    "chat-taken": {
        **_room(
            type_="LivechatSessionTaken",
            messages=_HISTORY_BEFORE_TAKEN,
            last_message_at="2025-03-14T09:30:04.512Z",
            agent=_AGENT,
            crm_data=_CRM_DATA,
        ),
        "departmentId": _DEPARTMENT,
        "servedBy": {
            "_id": _AGENT_ID,
            "username": "agent.smith",
            "ts": "2025-03-14T09:30:58.004Z",
        },
    },
    "visitor-message": _room(
        type_="Message",
        messages=[_HISTORY_AFTER_TAKEN[2]],
        last_message_at="2025-03-14T09:31:45.880Z",
        agent=_AGENT,
        crm_data=_CRM_DATA,
    ),
    "agent-message": _room(
        type_="Message",
        messages=[_HISTORY_AFTER_TAKEN[1]],
        last_message_at="2025-03-14T09:31:10.207Z",
        agent=_AGENT,
        crm_data=_CRM_DATA,
    ),
    "chat-forwarded": {
        **_room(
            type_="LivechatSessionForwarded",
            messages=[*_HISTORY_AFTER_TAKEN, _FILE_MESSAGE],
            last_message_at="2025-03-14T09:33:02.114Z",
            agent=_OTHER_AGENT,
            crm_data=_CRM_DATA,
        ),
        "departmentId": _DEPARTMENT,
        "servedBy": {
            "_id": _OTHER_AGENT_ID,
            "username": "emma.brown",
            "ts": "2025-03-14T09:33:30.519Z",
        },
        "oldServedBy": {
            "_id": _AGENT_ID,
            "ts": "2025-03-14T09:30:58.004Z",
            "username": "agent.smith",
        },
    },
    "chat-close": {
        **_room(
            type_="LivechatSession",
            messages=_FULL_HISTORY,
            last_message_at="2025-03-14T09:36:00.000Z",
            agent=_OTHER_AGENT,
            crm_data=_CRM_DATA,
            tags=["shipping", "vip"],
        ),
        "departmentId": _DEPARTMENT,
        "servedBy": {
            "_id": _OTHER_AGENT_ID,
            "username": "emma.brown",
            "ts": "2025-03-14T09:33:30.519Z",
        },
        "closedAt": "2025-03-14T09:36:00.000Z",
        "closedBy": {"_id": _OTHER_AGENT_ID, "username": "emma.brown"},
        "closer": "user",
    },
    "chat-edit": _room(
        type_="LivechatEdit",
        messages=_FULL_HISTORY,
        last_message_at="2025-03-14T09:36:00.000Z",
        agent=_OTHER_AGENT,
        crm_data=_CRM_DATA,
        tags=["shipping", "vip", "refund"],
    ),
    "lead-capture": _room(
        type_="LeadCapture",
        messages=[],
        last_message_at="2025-03-14T09:31:45.880Z",
        agent=_AGENT,
        crm_data=_CRM_DATA,
    ),
    "offline-message": {
        "type": "LivechatOfflineMessage",
        "sentAt": "2025-03-14T22:15:09.731Z",
        "visitor": {"name": "Omar Haddad", "email": "omar.haddad@example.org"},
        "message": "Do you ship to Canada? Please email me.",
    },
}

SAMPLE_NAMES: tuple[str, ...] = (*_SAMPLES, "send-test")
"""Every sample's name, in the order of a chat; ``send-test`` is the admin page's sample."""

_NAME_OF_TYPE = {
    EventType.CHAT_START: "chat-start",
    EventType.CHAT_QUEUED: "chat-queued",
    EventType.CHAT_TAKEN: "chat-taken",
    EventType.CHAT_FORWARDED: "chat-forwarded",
    EventType.CHAT_CLOSE: "chat-close",
    EventType.OFFLINE_MESSAGE: "offline-message",
    EventType.MESSAGE: "visitor-message",
    EventType.LEAD_CAPTURE: "lead-capture",
    EventType.CHAT_EDIT: "chat-edit",
}


def sample(name: str | EventType) -> dict[str, Any]:
    """A fresh copy of one sample, by name (``"chat-close"``, ``"agent-message"``, ``"send-test"``…)
    or by event type (``EventType.MESSAGE`` gives the visitor message).
    """
    if name == "send-test":
        return send_test_sample()
    if name in _SAMPLES:
        return copy.deepcopy(_SAMPLES[str(name)])
    try:
        event_type = EventType.lookup(str(name))
    except ValueError:
        known = ", ".join(SAMPLE_NAMES)
        raise ValueError(f"unknown sample {name!r}; known samples: {known}") from None
    return copy.deepcopy(_SAMPLES[_NAME_OF_TYPE[event_type]])


def all_samples() -> dict[str, dict[str, Any]]:
    """Every sample by name, the Send Test sample included."""
    return {name: sample(name) for name in SAMPLE_NAMES}


def send_test_sample(now: datetime | None = None) -> dict[str, Any]:
    """The payload of the admin page's Send Test button, as ``/api/v1/livechat/webhook.test`` builds it.

    Strings for email and phone, an empty visitor ``_id``, no visitor token, no message ids; all
    dates are "now" (``now`` fixes them for tests).
    """
    stamp = format_date(now or utc_now())
    return {
        "type": "LivechatSession",
        "_id": SEND_TEST_ROOM_ID,
        "label": "title",
        "topic": "asiodojf",
        "createdAt": stamp,
        "lastMessageAt": stamp,
        "tags": ["tag1", "tag2", "tag3"],
        "customFields": {"productId": "123456"},
        "visitor": {
            "_id": "",
            "name": "visitor name",
            "username": "visitor-username",
            "department": "department",
            "email": "email@address.com",
            "phone": "192873192873",
            "ip": "123.456.7.89",
            "browser": "Chrome",
            "os": "Linux",
            "customFields": {"customerId": "123456"},
        },
        "agent": {
            "_id": "asdf89as6df8",
            "username": "agent.username",
            "name": "Agent Name",
            "email": "agent@email.com",
        },
        "messages": [
            {"username": "visitor-username", "msg": "message content", "ts": stamp},
            {
                "username": "agent.username",
                "agentId": "asdf89as6df8",
                "msg": "message content from agent",
                "ts": stamp,
            },
        ],
    }
