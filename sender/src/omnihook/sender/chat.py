"""A Rocket.Chat room as it evolves, and the webhook payload each step produces.

Payloads are built the way Rocket.Chat's ``sendToCRM`` builds them: the room envelope, the visible
history at that moment (the whole history for room events, the one message for ``Message``), the
per-type fields, ``servedBy`` once taken, and ``crmData`` set to what the endpoint answered last
for the room. ``version`` picks the shape of a Rocket.Chat generation:

- ``current``: emails and phones as lists of objects, absent when empty; crmData as text;
- ``legacy``: emails and phones always present, ``null`` when empty; crmData as an object;
  ``closingMessage: false`` on every other message (one old version did that);
- ``docs``: the public documentation's samples: phone ``null``, messages without ``rid`` and
  ``_updatedAt``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Any, Literal

from omnihook.contracts import format_date

__all__ = [
    "VERSIONS",
    "AgentUser",
    "ChatBuilder",
    "Version",
    "VisitorProfile",
    "offline_message",
    "random_id",
]

Version = Literal["current", "legacy", "docs"]
VERSIONS: tuple[Version, ...] = ("current", "legacy", "docs")

_ID_ALPHABET = string.ascii_letters + string.digits


def random_id(rng: Random, length: int = 17) -> str:
    """An id in Rocket.Chat's (Meteor's) style."""
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class VisitorProfile:
    id: str
    token: str
    username: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    department: str | None = None
    ip: str | None = "203.0.113.7"
    os: str | None = "Mac OS 10.15.7"
    browser: str | None = "Chrome 131.0.0.0"
    custom_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentUser:
    id: str
    username: str
    name: str
    email: str | None = None


class ChatBuilder:
    """Steps of one chat; each step returns the payload Rocket.Chat would post for it."""

    def __init__(
        self,
        room_id: str,
        visitor: VisitorProfile,
        *,
        started_at: datetime,
        department_id: str | None = None,
        label: str | None = None,
        tags: list[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
        version: Version = "current",
        rng: Random | None = None,
    ) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown version {version!r}; choose one of {', '.join(VERSIONS)}")
        self.room_id = room_id
        self.visitor = visitor
        self.department_id = department_id
        self.label = label or visitor.name or visitor.username
        self.tags = list(tags or [])
        self.custom_fields = dict(custom_fields or {})
        self.version: Version = version
        self.rng = rng or Random(0)
        self.created_at = started_at
        self.now = started_at
        self.agent: AgentUser | None = None
        self.served_since: datetime | None = None
        self.messages: list[dict[str, Any]] = []
        self.crm_data: str | None = None
        """The body of the last 200 for this room (echoed as ``crmData``)."""
        self.closed = False
        self._closed_at: datetime | None = None
        self._closed_by: AgentUser | None = None
        self._closer: str | None = None

    # -- the lifecycle -------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        return self._room("LivechatSessionStart", departmentId=self.department_id)

    def queue(self) -> dict[str, Any]:
        return self._room("LivechatSessionQueued", departmentId=self.department_id)

    def take(self, agent: AgentUser) -> dict[str, Any]:
        self._require_open("take")
        self.agent = agent
        self.served_since = self._tick()
        return self._room(
            "LivechatSessionTaken", departmentId=self.department_id, servedBy=self._served_by()
        )

    def forward_to_agent(self, agent: AgentUser) -> dict[str, Any]:
        self._require_open("forward")
        old = {"_id": self.agent.id, "ts": format_date(self.served_since), "username": self.agent.username} if (
            self.agent and self.served_since) else None  # fmt: skip
        self.agent = agent
        self.served_since = self._tick()
        return self._room("LivechatSessionForwarded", departmentId=self.department_id,
                          servedBy=self._served_by(), oldServedBy=old)  # fmt: skip

    def forward_to_department(self, department_id: str) -> dict[str, Any]:
        self._require_open("forward")
        old_department, self.department_id = self.department_id, department_id
        self.agent, self.served_since = None, None
        self._tick()
        return self._room(
            "LivechatSessionForwarded", departmentId=department_id, oldDepartmentId=old_department
        )

    def lead_capture(self) -> dict[str, Any]:
        return self._room("LeadCapture", include_messages=False)

    def close(
        self, by: Literal["agent", "visitor"] = "agent", comment: str | None = None
    ) -> dict[str, Any]:
        self._require_open("close")
        closed_at = self._tick()
        closer_user = self.agent if by == "agent" and self.agent else None
        author = (closer_user.id, closer_user.username, closer_user.name) if closer_user else (
            self.visitor.id, self.visitor.username, self.visitor.name)  # fmt: skip
        self.messages.append(self._message(author, comment, closed_at, closing=True))
        self.closed = True
        self._closed_at = closed_at
        self._closer = "user" if by == "agent" else "visitor"
        self._closed_by = closer_user
        closed_by = {"_id": author[0], "username": author[1]}
        return self._room("LivechatSession", departmentId=self.department_id, servedBy=self._served_by(),
                          closedAt=format_date(closed_at), closedBy=closed_by, closer=self._closer)  # fmt: skip

    def edit_after_close(
        self, tags: list[str] | None = None, custom_fields: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not self.closed:
            raise RuntimeError("Rocket.Chat sends LivechatEdit only for closed rooms")
        self._tick()
        if tags is not None:
            self.tags = list(tags)
        if custom_fields is not None:
            self.custom_fields.update(custom_fields)
        return self._room("LivechatEdit")

    # -- messages ------------------------------------------------------------------------------

    def opening_message(self, text: str) -> None:
        """The visitor's first message, which opens the room: in the history of the start event
        (Rocket.Chat creates the room for it), with no webhook of its own."""
        visitor = (self.visitor.id, self.visitor.username, self.visitor.name)
        self.messages.append(self._message(visitor, text, self._tick()))

    def visitor_says(
        self, text: str | None, *, file: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._require_open("send a message")
        visitor = (self.visitor.id, self.visitor.username, self.visitor.name)
        return self._say(self._message(visitor, text, self._tick(), file=file))

    def agent_says(
        self, text: str | None, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        self._require_open("send a message")
        if self.agent is None:
            raise RuntimeError("no agent serves the room yet: take it first")
        author = (self.agent.id, self.agent.username, self.agent.name)
        return self._say(self._message(author, text, self._tick(), blocks=blocks))

    def edit_message(self, index: int, text: str) -> dict[str, Any]:
        """An edited message is saved again, so Rocket.Chat sends it again, with ``editedAt``."""
        message = self.messages[index]
        edited_at = format_date(self._tick())
        message["msg"] = text
        keys = list(message)
        message["editedAt"] = edited_at
        if "_updatedAt" in message:
            message["_updatedAt"] = edited_at
        # Rocket.Chat's key order: editedAt after rid, before agentId.
        order = [k for k in keys if k not in ("agentId", "_updatedAt")] + ["editedAt"] + [
            k for k in ("agentId", "_updatedAt") if k in keys]  # fmt: skip
        self.messages[index] = {key: message[key] for key in order if key in message}
        return self._message_event(self.messages[index])

    # -- payloads ------------------------------------------------------------------------------

    def _say(self, message: dict[str, Any]) -> dict[str, Any]:
        self.messages.append(message)
        return self._message_event(message)

    def _message_event(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._room("Message", messages=[message])

    def _room(self, type_: str, include_messages: bool = True, messages: list[dict[str, Any]] | None = None,
              **extra: Any) -> dict[str, Any]:  # fmt: skip
        room: dict[str, Any] = {
            "_id": self.room_id,
            "label": self.label,
            "createdAt": format_date(self.created_at),
        }
        last = self._last_message_at()
        if last:
            room["lastMessageAt"] = last
        if self.tags:
            room["tags"] = list(self.tags)
        if self.custom_fields:
            room["customFields"] = dict(self.custom_fields)
        room["visitor"] = self._visitor()
        if self.agent is not None:
            agent: dict[str, Any] = {"_id": self.agent.id, "username": self.agent.username,
                                     "name": self.agent.name, "customFields": {}}  # fmt: skip
            if self.agent.email:
                agent["email"] = self.agent.email
            room["agent"] = agent
        if self.crm_data is not None:
            room["crmData"] = self._crm_data()
        room["type"] = type_
        chosen = messages if messages is not None else (self.messages if include_messages else [])
        room["messages"] = [self._shaped(m) for m in chosen]
        for key, value in extra.items():
            if value is not None:
                room[key] = value
        copied: dict[str, Any] = json.loads(json.dumps(room))  # a copy the caller may change
        return copied

    def _visitor(self) -> dict[str, Any]:
        v = self.visitor
        visitor: dict[str, Any] = {"_id": v.id, "token": v.token}
        for key, value in (("name", v.name), ("username", v.username), ("department", v.department),
                           ("ip", v.ip), ("os", v.os), ("browser", v.browser)):  # fmt: skip
            if value is not None:
                visitor[key] = value
        visitor["customFields"] = dict(v.custom_fields)
        emails = [{"address": v.email}] if v.email else None
        phones = [{"phoneNumber": v.phone}] if v.phone else None
        if self.version == "current":
            if emails:
                visitor["email"] = emails
            if phones:
                visitor["phone"] = phones
        elif self.version == "legacy":
            visitor["email"], visitor["phone"] = emails, phones
        else:  # the public docs' samples: an email list and a null phone
            visitor["email"], visitor["phone"] = emails or [], None
        return visitor

    def _crm_data(self) -> Any:
        assert self.crm_data is not None
        if self.version == "legacy":
            try:
                return json.loads(self.crm_data)
            except ValueError:
                return self.crm_data
        return self.crm_data

    def _shaped(self, message: dict[str, Any]) -> dict[str, Any]:
        shaped = dict(message)
        if self.version == "docs":
            shaped.pop("rid", None)
            shaped.pop("_updatedAt", None)
        elif self.version == "legacy" and "closingMessage" not in shaped:
            shaped["closingMessage"] = False
        return shaped

    def _message(self, author: tuple[str, str, str | None], text: str | None, at: datetime, *,
                 file: dict[str, Any] | None = None, blocks: list[dict[str, Any]] | None = None,
                 closing: bool = False) -> dict[str, Any]:  # fmt: skip
        user_id, username, name = author
        message: dict[str, Any] = {"u": {"_id": user_id, "username": username, **({"name": name} if name else {})},
                                   "_id": random_id(self.rng), "username": username}  # fmt: skip
        if text:
            message["msg"] = text
        elif blocks:
            message["msg"] = json.dumps(blocks, separators=(",", ":"))
        if blocks:
            message["blocks"] = blocks
        message["ts"] = format_date(at)
        message["rid"] = self.room_id
        if username != self.visitor.username:
            message["agentId"] = user_id
        if closing:
            message["closingMessage"] = True
        if file:
            message["file"] = file
            message["attachments"] = [
                {"title": file.get("name"), "type": "file", "size": file.get("size")}
            ]
            message["fileUpload"] = {"publicFilePath": f"https://chat.example.com/file-upload/{file['_id']}/{file.get('name')}?token=x",
                                     "type": file.get("type"), "size": file.get("size")}  # fmt: skip
        message["_updatedAt"] = format_date(at)
        return message

    def _served_by(self) -> dict[str, Any] | None:
        if self.agent is None or self.served_since is None:
            return None
        return {
            "_id": self.agent.id,
            "username": self.agent.username,
            "ts": format_date(self.served_since),
        }

    def _last_message_at(self) -> str | None:
        return max((m["ts"] for m in self.messages), default=None)

    def _tick(self) -> datetime:
        self.now += timedelta(
            seconds=self.rng.randint(2, 40), milliseconds=self.rng.randint(0, 999)
        )
        return self.now

    def _require_open(self, what: str) -> None:
        if self.closed:
            raise RuntimeError(f"cannot {what}: the room is closed")


def offline_message(
    name: str | None, email: str, message: str, sent_at: datetime
) -> dict[str, Any]:
    """An offline-form submission, as ``livechat.offlineMessage`` posts it."""
    return {"type": "LivechatOfflineMessage", "sentAt": format_date(sent_at),
            "visitor": {"name": name, "email": email}, "message": message}  # fmt: skip
