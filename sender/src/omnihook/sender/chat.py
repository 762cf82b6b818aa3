"""A Rocket.Chat room as it evolves: the records Rocket.Chat keeps, and the webhooks each step sends.

A :class:`ChatBuilder` holds what Rocket.Chat would hold for one chat: the room document, the
visitor document, the agent users, and every stored message, the system messages included (the
``livechat-started`` message, the ``command`` "connected" and ``uj`` pair of each take, ``ul``
when an agent leaves, ``livechat_transfer_history`` on forwards and returns to the queue,
``livechat-close``, navigation messages, hidden copies of edited messages). Each step changes
those records as Rocket.Chat does and returns the payload :mod:`omnihook.contracts.building` makes
from them, so the payloads are the ones ``sendToCRM`` sends and :meth:`ChatBuilder.records` is
what Rocket.Chat's REST API would answer about the chat afterwards::

    >>> from datetime import UTC, datetime
    >>> visitor = VisitorProfile("V1", "tok", "guest-1", name="Jane Doe")
    >>> chat = ChatBuilder("R1", visitor, started_at=datetime(2025, 1, 1, 10, tzinfo=UTC))
    >>> chat.start()["messages"]                 # sent while the room is created
    []
    >>> chat.visitor_says("hi")["type"]
    'Message'
    >>> smith = AgentUser("A1", "smith", "Agent Smith")
    >>> [p["type"] for p in (chat.take(smith), chat.forward_to_agent(AgentUser("A2", "emma", "Emma")))]
    ['LivechatSessionTaken', 'LivechatSessionForwarded']
    >>> [p["type"] for p in chat.last_events]    # a forward to an agent is a take first
    ['LivechatSessionTaken', 'LivechatSessionForwarded']
    >>> [m.get("t") for m in chat.records().messages]
    ['livechat-started', None, 'command', 'uj', 'command', 'uj', 'ul', 'livechat_transfer_history']

Which Rocket.Chat generation the payloads look like is ``version``:

- ``current``: emails and phones as lists of objects, absent when empty; crmData as text;
- ``legacy``: emails and phones always present, ``null`` when empty (right after ``username``, as
  old versions wrote them); an agent without email has ``email: null``; crmData as an object;
  ``closingMessage: false`` on every other message (one old version did that);
- ``docs``: the public documentation's samples: phone ``null``, messages without ``rid`` and
  ``_updatedAt``.

The records are always current Rocket.Chat's.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any, Literal

from omnihook.contracts import format_date
from omnihook.contracts.building import BuildSettings, RoomRecords, build_offline_message

__all__ = [
    "DEFAULT_USER_AGENT",
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

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
"""A desktop Chrome on macOS: ``os`` "Mac OS 10.15.7", ``browser`` "Chrome 131.0.0.0"."""

SITE_URL = "https://chat.example.com"
ROCKET_CAT = {"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat"}

# Rocket.Chat's defaults for Livechat_lead_email_regex and Livechat_lead_phone_regex.
_LEAD_EMAIL = re.compile(r"\b[A-Z0-9._%+-]+@(?:[A-Z0-9-]+\.)+[A-Z]{2,4}\b", re.IGNORECASE)
_LEAD_PHONE = re.compile(
    r"((?:\([0-9]{1,3}\)|[0-9]{2})[ \-]*?[0-9]{4,5}(?:[\-\s\_]{1,2})?[0-9]{4}(?=(?:[^0-9]|$))"
    r"|[0-9]{4}[ \-]*?[0-9]{4}(?=(?:[^0-9]|$)))"
)

_ID_ALPHABET = string.ascii_letters + string.digits


def random_id(rng: Random, length: int = 17) -> str:
    """An id in Rocket.Chat's (Meteor's) style."""
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class VisitorProfile:
    """The visitor as the Livechat widget registers them. ``user_agent`` is what Rocket.Chat keeps
    (when it collects HTTP headers) and parses into the payload's ``os`` and ``browser``."""

    id: str
    token: str
    username: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    department: str | None = None
    ip: str | None = "203.0.113.7"
    user_agent: str | None = DEFAULT_USER_AGENT
    custom_fields: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AgentUser:
    """An agent's user account. ``custom_fields`` are the user's ``customFields``; only the keys
    the workspace marks ``sendToIntegrations`` reach a payload (``BuildSettings``)."""

    id: str
    username: str
    name: str
    email: str | None = None
    custom_fields: Mapping[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The user document Rocket.Chat keeps (``users.info`` answers a projection of it); no
        ``customFields`` when the user has none."""
        user: dict[str, Any] = {
            "_id": self.id,
            "createdAt": "2024-01-08T09:00:00.000Z",
            "username": self.username,
        }
        if self.email:
            user["emails"] = [{"address": self.email, "verified": True}]
        user |= {"type": "user", "status": "online", "active": True, "name": self.name,
                 "roles": ["user", "livechat-agent"], "statusLivechat": "available", "utcOffset": 0}  # fmt: skip
        if self.custom_fields is not None:
            user["customFields"] = dict(self.custom_fields)
        return user

    def author(self) -> dict[str, Any]:
        return {"_id": self.id, "username": self.username, "name": self.name}


class ChatBuilder:
    """One chat, step by step: each step changes Rocket.Chat's records and returns the payload
    Rocket.Chat sends for it (:attr:`last_events` holds every payload of the step, when a step
    sends more than one)."""

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
        settings: BuildSettings | None = None,
        keep_history: bool = True,
    ) -> None:
        """``settings``: what changes payloads (default: no navigation, no agent custom field,
        ``fileUpload`` under ``https://chat.example.com``). ``keep_history``: Message_KeepHistory,
        so that each edit keeps a hidden copy of the version before."""
        if version not in VERSIONS:
            raise ValueError(f"unknown version {version!r}; choose one of {', '.join(VERSIONS)}")
        self.visitor = visitor
        self.version: Version = version
        self.rng = rng or Random(0)
        self.settings = settings or BuildSettings(site_url=SITE_URL)
        self.keep_history = keep_history
        self.created_at = started_at
        self.now = started_at
        self.agent: AgentUser | None = None
        self.served_since: datetime | None = None
        self.closed = False
        self.events: list[dict[str, Any]] = []
        """Every payload sent so far, in order."""
        self.last_events: list[dict[str, Any]] = []
        """The payloads of the last step, in the order Rocket.Chat sends them."""
        self.users: dict[str, dict[str, Any]] = {}
        """The user documents of the agents who served the room, by id."""
        self.stored: list[dict[str, Any]] = []
        """Every message Rocket.Chat stored for the room, in the order it stored them."""
        self.visitor_record = self._visitor_record(visitor, started_at)
        created = format_date(started_at)
        room: dict[str, Any] = {"_id": room_id, "msgs": 0, "usersCount": 1, "lm": created,
                                "fname": label or visitor.name or visitor.username, "t": "l", "ts": created}  # fmt: skip
        if department_id:
            room["departmentId"] = department_id
        room["v"] = {"_id": visitor.id, "username": visitor.username, "token": visitor.token,
                     "status": "online", **({"name": visitor.name} if visitor.name else {})}  # fmt: skip
        room |= {"cl": False, "open": True, "waitingResponse": True, "queuedAt": created,
                 "source": {"type": "widget"}, "_updatedAt": created}  # fmt: skip
        if tags:
            room["tags"] = list(tags)
        if custom_fields:
            room["livechatData"] = dict(custom_fields)
        self.room = room
        """The room document."""
        self._started = False

    # -- the records ---------------------------------------------------------------------------

    def records(self) -> RoomRecords:
        """A copy of what Rocket.Chat holds about the chat now (room, visitor, agent users, every
        stored message); what its REST API would answer, and what ``building`` builds from."""
        snapshot: dict[str, Any] = json.loads(json.dumps(
            {"room": self.room, "visitor": self.visitor_record, "messages": self.stored,
             "users": list(self.users.values())}))  # fmt: skip
        return RoomRecords(snapshot["room"], snapshot["visitor"], tuple(snapshot["messages"]),
                           tuple(snapshot["users"]))  # fmt: skip

    def _live(self) -> RoomRecords:
        """The records themselves, for building (which reads only; payloads are copied)."""
        return RoomRecords(self.room, self.visitor_record, self.stored, tuple(self.users.values()))

    @property
    def room_id(self) -> str:
        return str(self.room["_id"])

    @property
    def department_id(self) -> str | None:
        value = self.room.get("departmentId")
        return value if isinstance(value, str) else None

    @property
    def label(self) -> str:
        return str(self.room.get("fname"))

    @property
    def tags(self) -> list[str]:
        return list(self.room.get("tags") or [])

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self.room["tags"] = list(value)

    @property
    def custom_fields(self) -> dict[str, Any]:
        return dict(self.room.get("livechatData") or {})

    @property
    def crm_data(self) -> str | None:
        """The body of the last 200 for this room (the room's ``crmData``, echoed in events)."""
        value = self.room.get("crmData")
        return value if isinstance(value, str) else None

    @crm_data.setter
    def crm_data(self, value: str | None) -> None:
        if value is None:
            self.room.pop("crmData", None)
        else:
            self.room["crmData"] = value

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The history a room event would carry now (current shape)."""
        history: list[dict[str, Any]] = self._live().event("LivechatEdit", settings=self.settings)[
            "messages"
        ]
        return history  # fmt: skip

    # -- the lifecycle -------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Chat Start: sent while Rocket.Chat creates the room, before ``livechat-started`` and
        before the first message is saved: no message, no agent, ``lastMessageAt`` = creation."""
        payload = self._room_event("LivechatSessionStart")
        if not self._started:
            self._started = True
            self._store(self._system("livechat-started", "", self._visitor_author(),
                                     self.created_at + timedelta(milliseconds=12), token=True))  # fmt: skip
        return self._emit(payload)

    def queue(self) -> dict[str, Any]:
        """Chat Queued: the room waits in the queue (manual selection, or no agent free)."""
        return self._emit(self._room_event("LivechatSessionQueued"))

    def take(self, agent: AgentUser) -> dict[str, Any]:
        """Chat Taken: ``agent`` takes the inquiry."""
        self._require_open("take")
        at = self._tick()
        self._assign(agent, at)
        return self._emit(self._room_event("LivechatSessionTaken"))

    def forward_to_agent(self, agent: AgentUser, comment: str = "") -> dict[str, Any]:
        """Forwarding to another agent: Rocket.Chat takes the inquiry for ``agent`` (a Taken
        event), saves the transfer, then sends Forwarded with ``oldServedBy``. Returns the
        Forwarded payload; :attr:`last_events` holds both."""
        self._require_open("forward")
        at = self._tick()
        old = dict(self.room["servedBy"]) if "servedBy" in self.room else None
        previous = self.agent
        self._assign(agent, at + timedelta(milliseconds=5))
        taken = self._room_event("LivechatSessionTaken")
        if previous is not None and previous.id != agent.id:
            self._store(
                self._system(
                    "ul", previous.username, previous.author(), at + timedelta(milliseconds=8)
                )
            )
        by = previous or agent
        self._store(self._transfer(at, by, scope="agent", comment=comment, to=agent))
        forwarded = self._room_event("LivechatSessionForwarded", old_served_by=old)
        return self._emit(taken, forwarded)

    def forward_to_department(
        self, department_id: str, agent: AgentUser | None = None, comment: str = ""
    ) -> dict[str, Any]:
        """Forwarding to a department: ``agent`` when the department assigns one at once (a
        Taken event comes first), else the room waits in the department's queue (no
        ``servedBy``). Forwarded carries ``oldDepartmentId``; ``departmentId`` is the new one."""
        self._require_open("forward")
        at = self._tick()
        old_department = self.department_id
        previous = self.agent
        self.room["departmentId"] = department_id
        payloads: list[dict[str, Any]] = []
        if agent is not None:
            self._assign(agent, at + timedelta(milliseconds=5))
            payloads.append(self._room_event("LivechatSessionTaken"))
        else:
            self._unassign(at + timedelta(milliseconds=5))
        if previous is not None and (agent is None or previous.id != agent.id):
            self._store(
                self._system(
                    "ul", previous.username, previous.author(), at + timedelta(milliseconds=8)
                )
            )
        by = previous or agent
        self._store(self._transfer(at, by, scope="department", comment=comment, to=agent,
                                   previous_department=old_department, next_department=department_id))  # fmt: skip
        payloads.append(
            self._room_event("LivechatSessionForwarded", old_department_id=old_department)
        )
        return self._emit(*payloads)

    def return_to_queue(self, comment: str = "") -> dict[str, Any]:
        """The agent returns the chat to the queue: the room loses ``servedBy``, a transfer with
        scope ``queue`` is saved, and Rocket.Chat sends Chat Queued."""
        self._require_open("return to the queue")
        if self.agent is None:
            raise RuntimeError("no agent serves the room: nothing to return")
        at = self._tick()
        previous = self.agent
        self._unassign(at + timedelta(milliseconds=5))
        self._store(
            self._system("ul", previous.username, previous.author(), at + timedelta(milliseconds=8))
        )
        self._store(self._transfer(at, previous, scope="queue", comment=comment))
        return self._emit(self._room_event("LivechatSessionQueued"))

    def lead_capture(self, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
        """Lead Capture: the last visitor message matched the lead email or phone pattern (or
        ``email``/``phone`` say what matched); Rocket.Chat adds the matches to the visitor, then
        sends ``LeadCapture`` with no messages."""
        emails = [email] if email else []
        phones = [phone] if phone else []
        if not emails and not phones:
            text = next((str(m.get("msg") or "") for m in reversed(self.stored)
                         if m.get("token") and not m.get("t") and not m.get("_hidden")), "")  # fmt: skip
            emails = _LEAD_EMAIL.findall(text)
            phones = [
                match[0] if isinstance(match, tuple) else match
                for match in _LEAD_PHONE.findall(text)
            ]
        known_emails = self.visitor_record.setdefault("visitorEmails", [])
        for address in emails:
            if {"address": address} not in known_emails:
                known_emails.append({"address": address})
        if not known_emails:
            del self.visitor_record["visitorEmails"]
        if phones:
            known_phones = self.visitor_record.setdefault("phone", [])
            for number in phones:
                if {"phoneNumber": number} not in known_phones:
                    known_phones.append({"phoneNumber": number})
        self.visitor_record["_updatedAt"] = format_date(self.now)
        return self._emit(self._live().lead_capture(settings=self.settings))

    def close(
        self, by: Literal["agent", "visitor"] = "agent", comment: str | None = None
    ) -> dict[str, Any]:
        """Chat Close: the room is closed (``closedAt``, ``closedBy``, ``closer``), then the
        ``livechat-close`` message (the comment) is saved, then the event is sent with the whole
        history, the closing message included."""
        self._require_open("close")
        closed_at = self._tick()
        closer_user = self.agent if by == "agent" and self.agent else None
        author = closer_user.author() if closer_user else self._visitor_author()
        self.room.pop("open", None)
        self.room |= {"closedAt": format_date(closed_at), "closedBy": {"_id": author["_id"], "username": author["username"]},
                      "closer": "user" if by == "agent" else "visitor", "_updatedAt": format_date(closed_at)}  # fmt: skip
        duration = int((closed_at - self.created_at).total_seconds())
        self.room["metrics"] = {"chatDuration": duration, "serviceTimeDuration": int(
            (closed_at - self.served_since).total_seconds()) if self.served_since else 0}  # fmt: skip
        closing = self._system("livechat-close", comment or "", author, closed_at + timedelta(milliseconds=4),
                               token=by == "visitor")  # fmt: skip
        closing |= {"groupable": False, "transcriptRequested": False}
        self._store(closing)
        self.closed = True
        return self._emit(self._room_event("LivechatSession"))

    def edit_after_close(
        self,
        tags: list[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
        topic: str | None = None,
    ) -> dict[str, Any]:
        """Chat Edit: the room's information is saved after close (``livechat.saveInfo``)."""
        if not self.closed:
            raise RuntimeError("Rocket.Chat sends LivechatEdit only for closed rooms")
        self._tick()
        if tags is not None:
            self.room["tags"] = list(tags)
        if custom_fields is not None:
            self.room["livechatData"] = {**self.room.get("livechatData", {}), **custom_fields}
        if topic is not None:
            self.room["topic"] = topic
        self.room["_updatedAt"] = format_date(self.now)
        return self._emit(self._room_event("LivechatEdit"))

    # -- messages ------------------------------------------------------------------------------

    def opening_message(self, text: str) -> None:
        """A visitor message saved without sending a webhook. Before :meth:`start`, it is in
        Chat Start's history, as the public reference and the samples show Start; current
        Rocket.Chat sends Start before saving the first message, which then has its own Message
        event: for that, call :meth:`visitor_says` after :meth:`start`."""
        self._save(self._chat_message(self._visitor_author(), text, self._tick(), token=True))

    def visitor_says(
        self, text: str | None, *, file: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A visitor message (``file``: ``{_id, name, type, size}`` of an upload)."""
        self._require_open("send a message")
        message = self._chat_message(
            self._visitor_author(), text, self._tick(), token=True, file=file
        )
        return self._say(message)

    def agent_says(
        self, text: str | None, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A message of the agent serving the room (``blocks``: UIKit blocks)."""
        self._require_open("send a message")
        if self.agent is None:
            raise RuntimeError("no agent serves the room yet: take it first")
        return self._say(self._chat_message(self.agent.author(), text, self._tick(), blocks=blocks))

    def edit_message(self, index: int, text: str) -> dict[str, Any]:
        """The author edits a visitor or agent message (``index`` into those, in order): saved
        again with ``editedAt``, so Rocket.Chat sends it again; with ``keep_history`` a hidden copy
        of the version before is stored."""
        ordinary = [m for m in self.stored if not m.get("t") and not m.get("_hidden")]
        message = ordinary[index]
        edited_at = format_date(self._tick())
        editor = {"_id": message["u"]["_id"], "username": message["u"]["username"]}
        if self.keep_history:
            copy = {k: v for k, v in json.loads(json.dumps(message)).items() if k != "_id"}
            self._store({"_id": random_id(self.rng), **copy, "_hidden": True, "parent": message["_id"],
                         "editedAt": edited_at, "editedBy": editor})  # fmt: skip
        message |= {"msg": text, "editedAt": edited_at, "editedBy": editor, "_updatedAt": edited_at}
        return self._emit(self._live().message_event(message["_id"], settings=self.settings))

    def visitor_navigates(self, title: str, href: str) -> dict[str, Any] | None:
        """The visitor opens another page: with ``Livechat_Visitor_navigation_as_a_message`` on,
        rocket.cat stores a navigation message; it is sent as a Message event only when
        ``settings.navigation_in_history`` (returns ``None`` otherwise, and sends nothing)."""
        self._require_open("navigate")
        at = self._tick()
        message = self._system(
            "livechat_navigation_history", f"{title} - {href}", dict(ROCKET_CAT), at
        )
        message |= {"groupable": False, "navigation": {"page": {"change": "url", "title": title,
                    "location": {"href": href}}, "token": self.visitor.token},
                    "expireAt": int((at + timedelta(days=30)).timestamp() * 1000)}  # fmt: skip
        self._store(message)
        if not self.settings.navigation_in_history:
            self.last_events = []
            return None
        return self._emit(self._live().message_event(message["_id"], settings=self.settings))

    # -- records -------------------------------------------------------------------------------

    def _visitor_record(self, visitor: VisitorProfile, at: datetime) -> dict[str, Any]:
        stamp = format_date(at)
        record: dict[str, Any] = {"_id": visitor.id, "username": visitor.username, "ts": stamp,
                                  "_updatedAt": stamp, "token": visitor.token}  # fmt: skip
        if visitor.name:
            record["name"] = visitor.name
        if visitor.department:
            record["department"] = visitor.department
        record["status"] = "online"
        if visitor.email:
            record["visitorEmails"] = [{"address": visitor.email}]
        if visitor.phone:
            record["phone"] = [{"phoneNumber": visitor.phone}]
        if visitor.custom_fields:
            record["livechatData"] = dict(visitor.custom_fields)
        if visitor.user_agent:
            record["userAgent"] = visitor.user_agent
        if visitor.ip:
            record["ip"] = visitor.ip
        record["host"] = SITE_URL.removeprefix("https://")
        return record

    def _visitor_author(self) -> dict[str, Any]:
        v = self.visitor
        return {"_id": v.id, "username": v.username, **({"name": v.name} if v.name else {})}

    def _assign(self, agent: AgentUser, at: datetime) -> None:
        """RoutingManager.assignAgent: ``servedBy`` first, then the "connected" and ``uj``
        messages a moment later."""
        self.users[agent.id] = agent.record()
        self.room["servedBy"] = {"_id": agent.id, "username": agent.username, "ts": format_date(at)}
        self.room["waitingResponse"] = True
        self.room["_updatedAt"] = format_date(at)
        self.agent, self.served_since = agent, at
        self._store(
            self._system("command", "connected", agent.author(), at + timedelta(milliseconds=1))
        )
        self._store(
            self._system("uj", agent.username, agent.author(), at + timedelta(milliseconds=2))
        )

    def _unassign(self, at: datetime) -> None:
        """LivechatRooms.removeAgentByRoomId: no ``servedBy``, ``queuedAt`` now."""
        self.room.pop("servedBy", None)
        self.room["queuedAt"] = format_date(at)
        self.room["_updatedAt"] = format_date(at)
        self.agent, self.served_since = None, None

    def _transfer(self, at: datetime, by: AgentUser | None, *, scope: str, comment: str,
                  to: AgentUser | None = None, previous_department: str | None = None,
                  next_department: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The ``livechat_transfer_history`` message saveTransferHistory stores."""
        author = by.author() if by else self._visitor_author()
        data: dict[str, Any] = {"transferredBy": {**author, "userType": "agent" if by else "visitor"},
                                "ts": format_date(at), "scope": scope, "comment": comment}  # fmt: skip
        if previous_department is not None:
            data["previousDepartment"] = previous_department
        if next_department is not None:
            data["nextDepartment"] = {"_id": next_department}
        if to is not None:
            data["transferredTo"] = to.author()
        message = self._system("livechat_transfer_history", "", {"_id": author["_id"], "username": author["username"]},
                               at + timedelta(milliseconds=9), token=by is None)  # fmt: skip
        message["transferData"] = data
        return message

    def _system(self, kind: str, text: str, author: dict[str, Any], at: datetime, *, token: bool = False) -> dict[str, Any]:  # fmt: skip
        stamp = format_date(at)
        message: dict[str, Any] = {"_id": random_id(self.rng), "t": kind, "rid": self.room_id, "ts": stamp,
                                   "msg": text, "u": author}  # fmt: skip
        if token:
            message["token"] = self.visitor.token
        message |= {"groupable": False, "_updatedAt": stamp}
        return message

    def _chat_message(self, author: dict[str, Any], text: str | None, at: datetime, *, token: bool = False,
                      file: dict[str, Any] | None = None, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        stamp = format_date(at)
        message: dict[str, Any] = {
            "_id": random_id(self.rng),
            "rid": self.room_id,
            "msg": text or "",
        }
        if token:
            message["token"] = self.visitor.token
            message["alias"] = self.visitor.name or self.visitor.username
        message |= {"ts": stamp, "u": author, "_updatedAt": stamp, "mentions": [], "channels": []}
        if blocks:
            message["blocks"] = blocks
        if file:
            name = str(file.get("name"))
            message["file"] = file
            message["files"] = [file]
            message["attachments"] = [{"title": name, "title_link": f"/file-upload/{file['_id']}/{name}",
                                       "title_link_download": True, "type": "file", "description": "",
                                       "size": file.get("size"), "format": name.rsplit(".", 1)[-1].upper()}]  # fmt: skip
        return message

    def _say(self, message: dict[str, Any]) -> dict[str, Any]:
        self._save(message)
        return self._emit(self._live().message_event(message["_id"], settings=self.settings))

    def _save(self, message: dict[str, Any]) -> None:
        """A chat message saved: the room's ``lm`` and counters follow (system messages don't)."""
        self._store(message)
        self.room["lm"] = message["ts"]
        self.room["msgs"] += 1
        self.room["_updatedAt"] = message["ts"]
        if message.get("token"):
            self.room["v"]["lastMessageTs"] = message["ts"]

    def _store(self, message: dict[str, Any]) -> None:
        self.stored.append(message)

    # -- payloads ------------------------------------------------------------------------------

    def _room_event(self, kind: str, **extra: Any) -> dict[str, Any]:
        return self._live().event(kind, settings=self.settings, **extra)

    def _emit(self, *payloads: dict[str, Any]) -> dict[str, Any]:
        self.last_events = [_shaped(payload, self.version) for payload in payloads]
        self.events += self.last_events
        return self.last_events[-1]

    def _tick(self) -> datetime:
        self.now += timedelta(
            seconds=self.rng.randint(2, 40), milliseconds=self.rng.randint(0, 999)
        )
        return self.now

    def _require_open(self, what: str) -> None:
        if self.closed:
            raise RuntimeError(f"cannot {what}: the room is closed")


def _shaped(payload: dict[str, Any], version: Version) -> dict[str, Any]:
    """The payload as a Rocket.Chat generation writes it (a fresh copy the caller may change)."""
    shaped: dict[str, Any] = json.loads(json.dumps(payload))
    if version == "current" or "visitor" not in shaped:
        return shaped
    visitor: dict[str, Any] = shaped["visitor"]
    emails, phones = visitor.pop("email", None), visitor.pop("phone", None)
    if version == "legacy":
        ordered: dict[str, Any] = {}
        for key, value in visitor.items():
            ordered[key] = value
            if key == "username":
                ordered["email"], ordered["phone"] = emails, phones
        shaped["visitor"] = ordered
        if "agent" in shaped and "email" not in shaped["agent"]:
            shaped["agent"]["email"] = None
        if isinstance(shaped.get("crmData"), str):
            with contextlib.suppress(ValueError):
                shaped["crmData"] = json.loads(shaped["crmData"])
        for message in shaped["messages"]:
            message.setdefault("closingMessage", False)
    else:  # the public docs' samples: an email list and a null phone
        visitor["email"], visitor["phone"] = emails or [], None
        for message in shaped["messages"]:
            message.pop("rid", None)
            message.pop("_updatedAt", None)
    return shaped


def offline_message(
    name: str | None, email: str, message: str, sent_at: datetime
) -> dict[str, Any]:
    """An offline-form submission, as ``livechat.offlineMessage`` posts it. It creates no room
    and leaves no record (unless offline messages go to a channel)."""
    return build_offline_message(name, email, message, sent_at)
