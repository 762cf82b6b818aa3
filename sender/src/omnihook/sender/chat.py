"""A Rocket.Chat room as it evolves: the records Rocket.Chat keeps, and the webhooks each step sends.

A :class:`ChatBuilder` holds what Rocket.Chat would hold for one chat: the room document, the
visitor document, the users who served or joined the room, and every stored message, the system
messages included (the ``livechat-started`` message, the ``command`` "connected" and ``uj`` pair
of each take, ``uj`` alone when a manager joins, ``ul`` when someone leaves,
``livechat_transfer_history`` on forwards and returns to the queue, ``livechat-close``,
navigation messages, hidden copies of edited messages). Each step changes those records as
Rocket.Chat does, in Rocket.Chat's order, and returns the payload
:mod:`omnihook.contracts.building` makes from the records as they were when Rocket.Chat built it,
so the payloads are the ones ``sendToCRM`` sends and :meth:`ChatBuilder.records` is what
Rocket.Chat's REST API would answer about the chat afterwards::

    >>> from datetime import UTC, datetime
    >>> visitor = VisitorProfile("V1", "tok", "guest-1", name="Jane Doe")
    >>> chat = ChatBuilder("R1", visitor, started_at=datetime(2025, 1, 1, 10, tzinfo=UTC))
    >>> smith = AgentUser("A1", "smith", "Agent Smith")
    >>> chat.visitor_starts("hi", agent=smith)["type"]   # the widget's first message, auto-assigned
    'Message'
    >>> [(p["type"], len(p["messages"])) for p in chat.last_events]
    [('LivechatSessionStart', 0), ('LivechatSessionTaken', 0), ('Message', 1)]
    >>> [p["type"] for p in (chat.forward_to_agent(AgentUser("A2", "emma", "Emma")),)]
    ['LivechatSessionForwarded']
    >>> [p["type"] for p in chat.last_events]    # a forward to an agent is a take first
    ['LivechatSessionTaken', 'LivechatSessionForwarded']
    >>> [m.get("t") for m in chat.records().messages]
    ['livechat-started', 'command', 'uj', None, 'command', 'uj', 'livechat_transfer_history', 'ul']

Which Rocket.Chat generation the payloads look like is ``version``:

- ``current``: emails and phones as lists of objects, absent when empty; crmData as text;
- ``legacy``: emails and phones always present, ``null`` when empty (right after ``username``, as
  old versions wrote them); an agent without email has ``email: null``; crmData as an object;
  ``closingMessage: false`` on every other message (one old version did that);
- ``docs``: the public documentation's samples: phone ``null``, messages without ``rid`` and
  ``_updatedAt``.

The records are always current Rocket.Chat's (7.x and later). Sources, in
``RocketChat/Rocket.Chat`` (file@commit, as read through the code index):

- ``apps/meteor/app/livechat/server/lib/RoutingManager.ts@0474935f``: ``assignAgent`` sets
  ``servedBy`` (``changeAgentByRoomId``), then saves ``command`` "connected" and ``uj`` with an
  empty ``msg``; ``takeInquiry`` calls ``afterTakeInquiry`` without awaiting it, with the room it
  re-read after the assignment; ``unassignAgent`` changes the department (which sends Forwarded)
  before it removes ``servedBy``, then has the room queued (Queued).
- ``apps/meteor/app/livechat/server/lib/Helper.ts@f181ce47``: ``forwardRoomToAgent`` takes the
  inquiry, then ``saveTransferHistory``, then removes the other subscriptions (``ul``), then
  runs ``livechat.afterForwardChatToAgent`` (Forwarded); ``forwardRoomToDepartment`` with
  auto-assignment delegates the inquiry (a take, while the room still has its old
  department), then ``saveTransferHistory``, ``ul``, then ``updateChatDepartment``
  (Forwarded); without it, ``saveTransferHistory`` then ``unassignAgent``.
- ``apps/meteor/app/livechat/server/lib/transfer.ts@66ef0091``: the transfer message and its
  ``transferData`` (``ts`` taken when it is saved, ``previousDepartment`` the room's).
- ``apps/meteor/app/livechat/server/lib/rooms.ts@014c0860``: ``returnRoomAsInquiry`` saves the
  transfer, then unassigns; ``createRoom`` then ``Messages.setRoomIdByToken`` before the first
  message is sent.
- ``apps/meteor/app/livechat/server/lib/QueueManager.ts@559fb435``: ``requestRoom`` runs
  ``livechat.newRoom`` (Start), saves ``livechat-started``, then delegates a ready inquiry at
  once (a take) or queues it (Queued).
- ``apps/meteor/app/lib/server/functions/sendMessage.ts@026bdc00`` and
  ``apps/meteor/app/lib/server/lib/afterSaveMessage.ts@0b05214a``: a message's ``ts`` is set
  when it is prepared; the Message event is built from the room read before the message was
  saved, whose ``lm`` is updated only after the callbacks.
- ``apps/meteor/app/lib/server/functions/updateMessage.ts@02af0b6f`` and
  ``packages/models/src/models/Messages.ts@00586fa7`` (``cloneAndSaveAsHistoryByRecord``),
  ``BaseRaw.ts@0716101b``: an edit clones the message first (``_hidden``, ``parent``,
  ``editedAt`` = the clone's time, ``editedBy`` = the editor, ``_updatedAt`` = now), then sets
  the message's own ``editedAt`` a moment later.
- ``apps/meteor/app/livechat/server/api/v1/room.ts@001b0e8b`` (``livechat/room.join``) and
  ``apps/meteor/app/lib/server/functions/addUserToRoom.ts@00123e4d``: a manager or monitor
  joining stores ``uj`` (``msg`` = the username) and a subscription: no take, no webhook.
- ``apps/meteor/app/livechat/server/lib/closeRoom.ts@0165805f``: the ``livechat-close``
  message's ``u`` is the closer as ``closedBy`` names it.
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
    """A user account: an agent's, or a manager's or monitor's (``roles``), or a bot agent's
    (``roles`` with ``"bot"``). ``custom_fields`` are the user's ``customFields``; only the keys
    the workspace marks ``sendToIntegrations`` reach a payload (``BuildSettings``)."""

    id: str
    username: str
    name: str
    email: str | None = None
    custom_fields: Mapping[str, Any] | None = None
    roles: tuple[str, ...] = ("user", "livechat-agent")

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
        user |= {"type": "bot" if "bot" in self.roles else "user", "status": "online", "active": True,
                 "name": self.name, "roles": list(self.roles)}  # fmt: skip
        if "livechat-agent" in self.roles:
            user["statusLivechat"] = "available"
        user["utcOffset"] = 0
        if self.custom_fields is not None:
            user["customFields"] = dict(self.custom_fields)
        return user

    def author(self) -> dict[str, Any]:
        return {"_id": self.id, "username": self.username, "name": self.name}

    def who(self) -> dict[str, Any]:
        """``{_id, username}``: how ``editedBy``, ``closedBy`` and a closer's message name a user."""
        return {"_id": self.id, "username": self.username}


class ChatBuilder:
    """One chat, step by step: each step changes Rocket.Chat's records and returns the payload
    Rocket.Chat sends for it (:attr:`last_events` holds every payload of the step, when a step
    sends more than one, and :attr:`moments` when Rocket.Chat built each)."""

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
        self.moments: list[datetime] = []
        """When Rocket.Chat built each payload of :attr:`events` (its clock)."""
        self.last_events: list[dict[str, Any]] = []
        """The payloads of the last step, in the order Rocket.Chat sends them."""
        self.users: dict[str, dict[str, Any]] = {}
        """The user documents of everyone who served or joined the room, by id."""
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
        self._subscribed: dict[str, AgentUser] = {}  # the room's subscriptions, by user id
        self._lm_before: dict[str, str] = {}  # each chat message's room lm before it was saved

    # -- the records ---------------------------------------------------------------------------

    def records(self) -> RoomRecords:
        """A copy of what Rocket.Chat holds about the chat now (room, visitor, users, every
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
        return self._emit(self._start())

    def _start(self) -> tuple[dict[str, Any], datetime]:
        sent = (self._room_event("LivechatSessionStart"), self.created_at)
        if not self._started:
            self._started = True
            self._store(self._system("livechat-started", "", self._visitor_author(),
                                     self._ms(self.created_at, 12), token=True, named=False))  # fmt: skip
        return sent

    def visitor_starts(self, text: str, *, agent: AgentUser | None = None) -> dict[str, Any]:
        """The visitor's first message, which opens the room (the widget's ``POST
        livechat/message``: ``createRoom``, then the message). Rocket.Chat creates the room and
        sends Chat Start, saves ``livechat-started``, then routes the inquiry:

        - ``agent``: the inquiry is ready and delegated at once (Auto_Selection without a
          waiting queue, or a bot agent): the take (``servedBy``, "connected", ``uj``) and its
          Chat Taken. The hook that sends it (``afterTakeInquiry``) is not awaited, but it reads
          the history two database round trips after the take (the visitor, then the agent),
          while the message is inserted only after ``requestRoom`` re-reads the room,
          ``createRoom`` runs ``Messages.setRoomIdByToken`` and ``sendMessage`` its
          ``beforeSave`` pipeline: so Chat Taken carries no message, and ``lastMessageAt`` =
          creation (the room it was given).
        - no ``agent``: the inquiry is queued (Manual_Selection, a waiting queue, no agent
          online): Chat Queued, with no message either.

        Then the message is saved (its ``ts`` after the take) and sent as a Message event.
        Returns the Message payload; :attr:`last_events` holds all three."""
        if self._started:
            raise RuntimeError("the room exists already: visitor_starts opens it")
        start = self._start()
        if agent is not None:
            self._assign(agent, self._ms(self.created_at, 20))
            routed = (self._room_event("LivechatSessionTaken"), self._ms(self.created_at, 22))
        else:
            routed = (self._room_event("LivechatSessionQueued"), self._ms(self.created_at, 14))
        self.now = self._ms(self.created_at, 35)
        message = self._chat_message(self._visitor_author(), text, self.now, token=True)
        return self._emit(start, routed, self._said(message))

    def queue(self) -> dict[str, Any]:
        """Chat Queued: the room waits in the queue (manual selection, or no agent free)."""
        return self._emit((self._room_event("LivechatSessionQueued"), self.now))

    def take(self, agent: AgentUser) -> dict[str, Any]:
        """Chat Taken: ``agent`` takes the inquiry (from the queue, or as routing assigns it).
        Rocket.Chat stores ``servedBy``, then the "connected" and ``uj`` messages; the Taken hook
        is not awaited and builds the event from the room re-read after the assignment, with the
        history stored by then."""
        self._require_open("take")
        at = self._tick()
        self._assign(agent, at)
        return self._emit((self._room_event("LivechatSessionTaken"), self._ms(at, 2)))

    def join(self, user: AgentUser) -> None:
        """A manager or monitor joins the room (``livechat/room.join``, ``addUserToRoom``): a
        subscription and a ``uj`` message (``msg`` = the username), no "connected" message, no
        change to ``servedBy``, and no webhook. They may then write in the room
        (:meth:`user_says`)."""
        self._require_open("join")
        at = self._tick()
        self.users[user.id] = user.record()
        self._subscribed[user.id] = user
        self._store(self._system("uj", user.username, user.author(), at))
        self.last_events = []

    def forward_to_agent(
        self, agent: AgentUser, comment: str = "", *, by: AgentUser | None = None
    ) -> dict[str, Any]:
        """Forwarding to another agent (``forwardRoomToAgent``), by ``by`` (default: the agent
        serving the room): Rocket.Chat takes the inquiry for ``agent`` (``servedBy``,
        "connected", ``uj``: a Taken event), then saves the transfer, then removes the other
        subscriptions (``ul``), then sends Forwarded with ``oldServedBy`` from the room re-read.
        Returns the Forwarded payload; :attr:`last_events` holds both."""
        self._require_open("forward")
        at = self._tick()
        old = dict(self.room["servedBy"]) if "servedBy" in self.room else None
        previous = self.agent
        if previous is not None and previous.id == agent.id:
            raise RuntimeError("error-selected-agent-room-agent-are-same")
        forwarder = by or previous or agent
        transfer = self._transfer(
            self._ms(at, 5), forwarder, scope="agent", comment=comment, to=agent
        )
        self._assign(agent, at)
        taken = (self._room_event("LivechatSessionTaken"), self._ms(at, 2))
        self._store(transfer)
        if old is not None:
            self._unsubscribe(self._ms(at, 8), keep=agent)
        forwarded = self._room_event("LivechatSessionForwarded", old_served_by=old)
        return self._emit(taken, (forwarded, self._ms(at, 10)))

    def forward_to_department(
        self,
        department_id: str,
        agent: AgentUser | None = None,
        comment: str = "",
        *,
        picked: bool = False,
        by: AgentUser | None = None,
    ) -> dict[str, Any]:
        """Forwarding to a department (``forwardRoomToDepartment``), by ``by`` (default: the
        agent serving the room). Returns the Forwarded payload (``oldDepartmentId``;
        ``departmentId`` the new one); :attr:`last_events` holds every payload of the step.

        - ``agent``: the department assigns one at once (auto-assignment; ``picked``: the
          forwarder chose that agent, so the transfer names them as ``transferredTo``): the take
          comes first, while the room still has its old department (Chat Taken carries the old
          ``departmentId``), then the transfer, ``ul`` for the agent before, then the department
          changes and Forwarded is sent (``servedBy`` the new agent).
        - no ``agent`` (no auto-assignment: the department's queue): the transfer, then the
          department changes and Forwarded is sent while the room is still served (``servedBy``
          and ``agent`` the agent before), then ``servedBy`` goes, ``ul``, and Chat Queued."""
        self._require_open("forward")
        at = self._tick()
        old_department = self.department_id
        if old_department == department_id:
            raise RuntimeError("error-forwarding-chat-same-department")
        previous = self.agent
        forwarder = by or previous or agent
        if agent is not None:
            if previous is not None and previous.id == agent.id:
                raise RuntimeError("error-no-agents-online-in-department")
            transfer = self._transfer(self._ms(at, 5), forwarder, scope="department", comment=comment,
                                      to=agent if picked else None, previous_department=old_department,
                                      next_department=department_id)  # fmt: skip
            self._assign(agent, at)
            taken = (self._room_event("LivechatSessionTaken"), self._ms(at, 2))
            self._store(transfer)
            if previous is not None:
                self._unsubscribe(self._ms(at, 8), keep=agent)
            self._change_department(department_id, self._ms(at, 10))
            forwarded = self._room_event(
                "LivechatSessionForwarded", old_department_id=old_department
            )
            return self._emit(taken, (forwarded, self._ms(at, 11)))
        self._store(self._transfer(self._ms(at, 1), forwarder, scope="department", comment=comment,
                                   previous_department=old_department, next_department=department_id))  # fmt: skip
        self._change_department(department_id, self._ms(at, 4))
        forwarded = self._room_event("LivechatSessionForwarded", old_department_id=old_department)
        self._unassign(self._ms(at, 6))
        self._unsubscribe(self._ms(at, 8))
        queued = self._room_event("LivechatSessionQueued")
        self._emit((forwarded, self._ms(at, 5)), (queued, self._ms(at, 9)))
        return self.last_events[0]

    def return_to_queue(self, comment: str = "") -> dict[str, Any]:
        """The agent returns the chat to the queue (``returnRoomAsInquiry``): the transfer with
        scope ``queue`` is saved, then the room loses ``servedBy`` (``queuedAt`` now), the
        subscriptions go (``ul``), and Rocket.Chat sends Chat Queued."""
        self._require_open("return to the queue")
        if self.agent is None:
            raise RuntimeError("no agent serves the room: nothing to return")
        at = self._tick()
        self._store(self._transfer(self._ms(at, 1), self.agent, scope="queue", comment=comment,
                                   previous_department=self.department_id))  # fmt: skip
        self._unassign(self._ms(at, 4))
        self._unsubscribe(self._ms(at, 6))
        return self._emit((self._room_event("LivechatSessionQueued"), self._ms(at, 7)))

    def lead_capture(self, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
        """Lead Capture: the last visitor message matched the lead email or phone pattern (or
        ``email``/``phone`` say what matched); Rocket.Chat adds the matches to the visitor, then
        sends ``LeadCapture`` with no messages, from the room the message's callbacks were given
        (``lastMessageAt`` the ``lm`` before that message)."""
        emails = [email] if email else []
        phones = [phone] if phone else []
        matched = next((m for m in reversed(self.stored)
                        if m.get("token") and not m.get("t") and not m.get("_hidden")), None)  # fmt: skip
        if not emails and not phones:
            text = str(matched.get("msg") or "") if matched else ""
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
        payload = self._live().lead_capture(settings=self.settings)
        if matched is not None and str(matched["_id"]) in self._lm_before:
            payload["lastMessageAt"] = self._lm_before[str(matched["_id"])]
        return self._emit((payload, self.now))

    def close(
        self, by: Literal["agent", "visitor"] = "agent", comment: str | None = None
    ) -> dict[str, Any]:
        """Chat Close: the room is closed (``closedAt``, ``closedBy``, ``closer``) and its
        subscriptions removed, then the ``livechat-close`` message (the comment, by the closer
        as ``closedBy`` names them) is saved, then the event is sent with the whole history, the
        closing message included."""
        self._require_open("close")
        closed_at = self._tick()
        closer_user = self.agent if by == "agent" and self.agent else None
        author = closer_user.who() if closer_user else self._visitor_author(named=False)
        self.room.pop("open", None)
        self.room |= {"closedAt": format_date(closed_at), "closedBy": dict(author),
                      "closer": "user" if by == "agent" else "visitor", "_updatedAt": format_date(closed_at)}  # fmt: skip
        duration = int((closed_at - self.created_at).total_seconds())
        self.room["metrics"] = {"chatDuration": duration, "serviceTimeDuration": int(
            (closed_at - self.served_since).total_seconds()) if self.served_since else 0}  # fmt: skip
        self._subscribed.clear()
        closing = self._system("livechat-close", comment or "", author, self._ms(closed_at, 4),
                               token=by == "visitor")  # fmt: skip
        closing |= {"groupable": False, "transcriptRequested": False}
        self._store(closing)
        self.closed = True
        return self._emit((self._room_event("LivechatSession"), self._ms(closed_at, 6)))

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
        return self._emit((self._room_event("LivechatEdit"), self.now))

    # -- messages ------------------------------------------------------------------------------

    def opening_message(self, text: str) -> None:
        """A visitor message saved without sending a webhook. Before :meth:`start`, it is in
        Chat Start's history, as the public reference and the samples show Start; current
        Rocket.Chat sends Start before saving the first message, which then has its own Message
        event: for that, use :meth:`visitor_starts` (or :meth:`visitor_says` after
        :meth:`start`)."""
        self._save(self._chat_message(self._visitor_author(), text, self._tick(), token=True))

    def visitor_says(
        self, text: str | None, *, file: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A visitor message (``file``: ``{_id, name, type, size}`` of an upload). The Message
        event carries the room as it was before the message (``lastMessageAt`` the ``lm``
        before it)."""
        self._require_open("send a message")
        message = self._chat_message(
            self._visitor_author(), text, self._tick(), token=True, file=file
        )
        return self._emit(self._said(message))

    def agent_says(
        self, text: str | None, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A message of the agent serving the room (``blocks``: UIKit blocks)."""
        self._require_open("send a message")
        if self.agent is None:
            raise RuntimeError("no agent serves the room yet: take it first")
        return self.user_says(self.agent, text, blocks=blocks)

    def user_says(
        self, user: AgentUser, text: str | None, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A message of a user in the room: the serving agent, or a manager who joined
        (:meth:`join`). Sent as an agent message (no ``token``); the payload's ``agent`` is still
        the agent serving the room."""
        self._require_open("send a message")
        if user.id not in self._subscribed:
            raise RuntimeError(f"{user.username} is not in the room: take it or join it first")
        message = self._chat_message(user.author(), text, self._tick(), blocks=blocks)
        return self._emit(self._said(message))

    def edit_message(self, index: int, text: str, *, by: AgentUser | None = None) -> dict[str, Any]:
        """A visitor or agent message (``index`` into those, in order) is edited, by its author
        or ``by`` (a user allowed to edit others' messages). With ``keep_history``, Rocket.Chat
        first stores a hidden copy of the version before (``_hidden``, ``parent``, its
        ``editedAt`` the time of this edit, its ``editedBy`` this editor, ``_updatedAt`` now),
        then saves the message with its own ``editedAt`` a moment later; the Message event is
        sent again, with the room read when editing."""
        ordinary = [m for m in self.stored if not m.get("t") and not m.get("_hidden")]
        message = ordinary[index]
        at = self._tick()
        editor = (
            by.who()
            if by is not None
            else {"_id": message["u"]["_id"], "username": message["u"]["username"]}
        )
        if self.keep_history:
            copy: dict[str, Any] = {"_id": random_id(self.rng)}
            copy |= {k: v for k, v in json.loads(json.dumps(message)).items() if k != "_id"}
            copy |= {"_updatedAt": format_date(at), "_hidden": True, "parent": message["_id"],
                     "editedAt": format_date(at), "editedBy": editor}  # fmt: skip
            self._store(copy)
        edited_at = self._ms(at, 3)
        message |= {"msg": text, "editedAt": format_date(edited_at), "editedBy": editor,
                    "_updatedAt": format_date(self._ms(at, 4))}  # fmt: skip
        payload = self._live().message_event(message["_id"], settings=self.settings)
        return self._emit((payload, self._ms(at, 5)))

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
        return self._emit((self._live().message_event(message["_id"], settings=self.settings), at))

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

    def _visitor_author(self, *, named: bool = True) -> dict[str, Any]:
        v = self.visitor
        return {
            "_id": v.id,
            "username": v.username,
            **({"name": v.name} if v.name and named else {}),
        }

    def _assign(self, agent: AgentUser, at: datetime) -> None:
        """RoutingManager.assignAgent: the subscription and ``servedBy`` first, then the
        "connected" and ``uj`` (empty ``msg``) messages a moment later."""
        self.users[agent.id] = agent.record()
        self._subscribed[agent.id] = agent
        self.room["servedBy"] = {"_id": agent.id, "username": agent.username, "ts": format_date(at)}
        self.room["waitingResponse"] = True
        self.room["_updatedAt"] = format_date(at)
        self.agent, self.served_since = agent, at
        self._store(self._system("command", "connected", agent.author(), self._ms(at, 1)))
        self._store(self._system("uj", "", agent.author(), self._ms(at, 2)))

    def _unassign(self, at: datetime) -> None:
        """LivechatRooms.removeAgentByRoomId: no ``servedBy``, ``queuedAt`` now."""
        self.room.pop("servedBy", None)
        self.room["queuedAt"] = format_date(at)
        self.room["_updatedAt"] = format_date(at)
        self.agent, self.served_since = None, None

    def _unsubscribe(self, at: datetime, *, keep: AgentUser | None = None) -> None:
        """RoutingManager.removeAllRoomSubscriptions: an ``ul`` for each subscriber (but
        ``keep``), in the order they subscribed."""
        for number, user in enumerate([u for u in self._subscribed.values() if u != keep]):
            del self._subscribed[user.id]
            self._store(self._system("ul", user.username, user.author(), self._ms(at, number)))

    def _change_department(self, department_id: str, at: datetime) -> None:
        """updateChatDepartment (which then runs livechat.afterForwardChatToDepartment)."""
        self.room["departmentId"] = department_id
        self.room["_updatedAt"] = format_date(at)

    def _transfer(self, at: datetime, by: AgentUser | None, *, scope: str, comment: str,
                  to: AgentUser | None = None, previous_department: str | None = None,
                  next_department: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The ``livechat_transfer_history`` message saveTransferHistory stores at ``at``
        (``transferData.ts`` is taken just before the message's own ``ts``)."""
        author = by.author() if by else self._visitor_author()
        served = self.room.get("servedBy") or {}
        kind = "visitor" if by is None else ("agent" if served.get("_id") == by.id else "user")
        data: dict[str, Any] = {"transferredBy": {**author, "userType": kind}, "ts": format_date(at),
                                "scope": scope, "comment": comment}  # fmt: skip
        if previous_department is not None:
            data["previousDepartment"] = previous_department
        if next_department is not None:
            data["nextDepartment"] = {"_id": next_department}
        if to is not None:
            data["transferredTo"] = to.author()
        message = self._system("livechat_transfer_history", "", {"_id": author["_id"], "username": author["username"]},
                               self._ms(at, 1), token=by is None)  # fmt: skip
        message["transferData"] = data
        return message

    def _system(self, kind: str, text: str, author: dict[str, Any], at: datetime, *, token: bool = False,
                named: bool = True) -> dict[str, Any]:  # fmt: skip
        stamp = format_date(at)
        who = author if named else {"_id": author["_id"], "username": author["username"]}
        message: dict[str, Any] = {"_id": random_id(self.rng), "t": kind, "rid": self.room_id, "ts": stamp,
                                   "msg": text, "u": who}  # fmt: skip
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

    def _said(self, message: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
        """A chat message saved and its Message event, built (as Rocket.Chat builds it) from the
        room read before the message: the room's ``lm`` moves only after."""
        self._store(message)
        payload = self._live().message_event(message["_id"], settings=self.settings)
        self._moved(message)
        return payload, datetime.fromisoformat(str(message["ts"]))

    def _save(self, message: dict[str, Any]) -> None:
        """A chat message saved without a webhook."""
        self._store(message)
        self._moved(message)

    def _moved(self, message: dict[str, Any]) -> None:
        """The room after a chat message: its ``lm`` and counters follow (system messages don't)."""
        self._lm_before[str(message["_id"])] = str(self.room["lm"])
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

    def _emit(self, *sent: tuple[dict[str, Any], datetime]) -> dict[str, Any]:
        """The payloads of a step, each with when Rocket.Chat built it, in the order it sends
        them; returns the last."""
        self.last_events = [_shaped(payload, self.version) for payload, _ in sent]
        self.events += self.last_events
        self.moments += [moment for _, moment in sent]
        return self.last_events[-1]

    def moment_of(self, payload: dict[str, Any]) -> datetime:
        """When Rocket.Chat built ``payload`` (one of :attr:`events`, the object itself)."""
        for index in range(len(self.events) - 1, -1, -1):
            if self.events[index] is payload:
                return self.moments[index]
        raise ValueError("not a payload of this chat")

    def _tick(self) -> datetime:
        self.now += timedelta(
            seconds=self.rng.randint(2, 40), milliseconds=self.rng.randint(0, 999)
        )
        return self.now

    @staticmethod
    def _ms(at: datetime, milliseconds: int) -> datetime:
        return at + timedelta(milliseconds=milliseconds)

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
