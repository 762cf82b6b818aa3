"""Which webhooks Rocket.Chat sent for a room, told from what it keeps, each rebuilt as it was.

From a room's records (the room, its visitor, the agents who served it, every stored message
with the system messages that mark takes, transfers and the close), this lists the events the
switches that are on made Rocket.Chat send, and rebuilds each one with
:mod:`omnihook.contracts.building` as ``sendToCRM`` built it then: the history up to that moment,
the agent and department of that moment; the room's other fields (tags, custom fields,
``crmData``) as they are now, the only state Rocket.Chat keeps.

============================  ==========================================================
event                         told from
============================  ==========================================================
Chat Start                    the room's creation (``ts``), its first department
Chat Taken                    each agent's assignment (``command`` "connected"); the
                              latest exactly: ``servedBy``
Chat Forwarded                each ``livechat_transfer_history`` message (to an agent or
                              a department)
Chat Close                    ``closedAt``, ``closedBy``, ``closer``, the closing message
Visitor and Agent Messages    each message; an edited one also as first written, when
                              Rocket.Chat kept its history (hidden edit copies), and as
                              last edited
Chat Queued                   only for a room in the queue now (whether Rocket.Chat sent
                              it before depends on its routing, which leaves no trace)
============================  ==========================================================

Not rebuilt, for lack of a trace: Lead Capture (the emails and phones it added are merged into
the visitor), Chat Edit (edits after close leave no record), Offline Messages (no room), the
original text of a message edited while Rocket.Chat kept no edit history, and the edits of a
message edited again since (their text is kept, their exact time is not): the last two are
reported as such.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from omnihook.contracts import (
    ContractError,
    EventType,
    event_identity,
    format_date,
    message_identity,
    parse_event,
)
from omnihook.contracts.building import (
    BuildSettings,
    RoomRecords,
    build_message_event,
    build_room_event,
)

from .switches import WebhookSwitches

__all__ = ["ExpectedEvent", "Unrebuildable", "expected_events", "queued_prefix"]

_TRANSFER = "livechat_transfer_history"
_EDIT_TOLERANCE = 1.0  # an edit's hidden copy and the message's editedAt: milliseconds apart
_CLOSE = "livechat-close"
_TRANSFER_GAP = 2.0  # a forward's take and its transfer message: milliseconds apart


@dataclass(frozen=True)
class ExpectedEvent:
    """An event Rocket.Chat sent, rebuilt: its payload (the bytes reconcile would accept) and
    its identity (what it is compared by)."""

    room_id: str
    type: str
    what: str
    """In words, for the gap table: "Chat Taken by emma.brown", "Visitor message M123"."""
    at: str
    """When Rocket.Chat sent it (ISO)."""
    body: bytes
    identity: str


@dataclass(frozen=True)
class Unrebuildable:
    """An event Rocket.Chat sent that cannot be rebuilt, and why."""

    room_id: str
    type: str
    what: str
    at: str
    why: str
    identity: str | None = None
    """Its identity, when known: if the store received it, it is no gap."""
    within: float = 0.0
    """How many seconds off ``identity``'s moment may be (known only approximately)."""


def queued_prefix(room_id: str) -> str:
    """What every Chat Queued identity of a room starts with (its history length is unknown)."""
    return f"queued:{room_id}:"


def expected_events(
    records: RoomRecords,
    switches: WebhookSwitches,
    *,
    settings: BuildSettings | None = None,
    in_queue: bool = False,
) -> tuple[list[ExpectedEvent], list[Unrebuildable]]:
    """The events Rocket.Chat sent for the room of ``records`` (oldest first), rebuilt, and
    those it sent that cannot be. ``in_queue``: the room waits in the queue now."""
    settings = settings or BuildSettings(navigation_in_history=switches.navigation)
    return _Room(records, switches, settings, in_queue).expected()


class _Room:
    def __init__(
        self,
        records: RoomRecords,
        switches: WebhookSwitches,
        settings: BuildSettings,
        in_queue: bool,
    ) -> None:
        self.records = records
        self.in_queue = in_queue
        self.room = records.room
        self.room_id = records.room_id
        self.visitor = records.visitor
        self.switches = switches
        self.settings = settings
        self.timeline = records.timeline  # every build reads the history from it
        self.stored = _visible(records.messages)
        self.found: list[ExpectedEvent] = []
        self.lost: list[Unrebuildable] = []
        self.states: list[tuple[str, Mapping[str, Any] | None, Any]] = []
        """``(from when, servedBy, departmentId)``, oldest first."""

    def expected(self) -> tuple[list[ExpectedEvent], list[Unrebuildable]]:
        self._start()
        self._queued()
        self._assignments()
        self._messages()
        self._close()
        self.found.sort(key=lambda event: event.at)
        return self.found, self.lost

    # -- the lifecycle ---------------------------------------------------------------------------

    def _start(self) -> None:
        if not self.switches.sends("Chat Start"):
            return
        created = _iso(self.room.get("ts"))
        room = {**self.room, "departmentId": self._first_department()}
        room.pop("servedBy", None)
        self._room_event(EventType.CHAT_START, room, None, created, "Chat Start")

    def _queued(self) -> None:
        if not (self.in_queue and self.switches.sends("Chat Queued")):
            return
        at = _iso(self.room.get("queuedAt") or self.room.get("ts"))
        room = {key: value for key, value in self.room.items() if key != "servedBy"}
        self._room_event(EventType.CHAT_QUEUED, room, None, at, "Chat Queued")

    def _assignments(self) -> None:
        """Takes and transfers, in Rocket.Chat's order; records who served the room and its
        department over time, for the events in between.

        A take is Rocket.Chat's ``command`` "connected" message (with a ``uj`` of an empty
        ``msg``); a manager joining writes only a ``uj`` naming themselves, and is no take. A
        take just before a transfer belongs to it: forwarding assigns the new agent first (Chat
        Taken, with the department before), then saves the transfer (Chat Forwarded), within
        milliseconds. A forward to a department that assigns nobody at once keeps the agent
        before on its Chat Forwarded (Rocket.Chat moves the department, then unassigns).
        """
        served: Mapping[str, Any] | None = None
        before: Mapping[str, Any] | None = None  # who served before a take that took over
        took_at: str | None = None  # the latest take, if no transfer came after it
        department = self._first_department()
        self.states = [("", None, department)]
        takes = _takes(self.stored, self.visitor)
        markers = sorted([*takes, *(m for m in self.stored if m.get("t") == _TRANSFER)],
                         key=lambda m: _iso(m.get("ts")))  # fmt: skip
        current = self.room.get("servedBy")
        if not takes and isinstance(current, Mapping):
            # Rocket.Chat kept no trace of the take: the room's servedBy tells the one it knows.
            served = dict(current)
            at = _iso(served.get("ts"))
            self.states.append((at, served, department))
            self._taken(served, department, at)
        latest_take = takes[-1] if takes else None
        for marker in markers:
            at = _iso(marker.get("ts"))
            if marker.get("t") != _TRANSFER:
                agent = marker.get("u") or {}
                taken = {"_id": agent.get("_id"), "username": agent.get("username"), "ts": at}
                if (marker is latest_take and isinstance(current, Mapping)
                        and current.get("_id") == agent.get("_id")):  # fmt: skip
                    taken = dict(current)  # the exact assignment time
                before = (
                    served if served is not None and served.get("_id") != agent.get("_id") else None
                )
                served, took_at = taken, at
                self.states.append((at, served, department))
                self._taken(served, department, at)
                continue
            data = marker.get("transferData") or {}
            scope = data.get("scope")
            if scope == "agent":
                target = data.get("transferredTo") or {}
                took_over = served is not None and served.get("_id") == target.get("_id")
                old = before if took_over else served
                new = dict(served) if took_over and served is not None else {
                    "_id": target.get("_id"), "username": target.get("username"), "ts": at}  # fmt: skip
                served, before = new, None
                self.states.append((at, served, department))
                if self.switches.sends("Forwarding"):
                    room = {**self.room, "departmentId": department, "servedBy": dict(new)}
                    self._room_event(EventType.CHAT_FORWARDED, room, self.records.user(new.get("_id")), at,
                                     f"Chat Forwarded to {new.get('username')}",
                                     old_served_by=dict(old) if old else None)  # fmt: skip
            elif scope == "department":
                previous = data.get("previousDepartment") or department
                department = (data.get("nextDepartment") or {}).get("_id") or department
                # The new department's agent took it first (a room in the queue too).
                assigned = took_at is not None and _seconds(took_at, at) <= _TRANSFER_GAP
                room = {key: v for key, v in self.room.items() if key != "servedBy"}
                room["departmentId"] = department
                if served is not None:
                    room["servedBy"] = dict(served)
                agent = self.records.user(served.get("_id")) if served is not None else None
                if self.switches.sends("Forwarding"):
                    self._room_event(EventType.CHAT_FORWARDED, room, agent, at,
                                     f"Chat Forwarded to department {department}",
                                     old_department_id=previous)  # fmt: skip
                if not assigned:
                    served = None  # in the department's queue until someone takes it
                before = None
                self.states.append((at, served, department))
            else:  # back to the queue; its Chat Queued leaves no reliable trace
                served, before = None, None
                self.states.append((at, None, department))
            took_at = None

    def _state_at(self, at: str) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
        """The room as it was at ``at`` (who served it, its department) and that agent."""
        served: Mapping[str, Any] | None = None
        department: Any = self.room.get("departmentId")
        for moment, who, where in self.states:
            if moment > at:
                break
            served, department = who, where
        room = {key: value for key, value in self.room.items() if key != "servedBy"}
        room["departmentId"] = department
        if served is not None:
            room["servedBy"] = dict(served)
        agent = self.records.user(served.get("_id")) if served is not None else None
        return room, agent

    def _taken(self, served: Mapping[str, Any], department: Any, at: str) -> None:
        if not self.switches.sends("Chat Taken"):
            return
        room = {**self.room, "departmentId": department, "servedBy": dict(served)}
        self._room_event(EventType.CHAT_TAKEN, room, self.records.user(served.get("_id")), at,
                         f"Chat Taken by {served.get('username')}")  # fmt: skip

    def _close(self) -> None:
        closed = self.room.get("closedAt")
        if not closed or not self.switches.sends("Chat Close"):
            return
        closing = _last(m for m in self.stored if m.get("t") == _CLOSE)
        at = max(_iso(closed), _iso(closing.get("ts")) if closing else _iso(closed))
        self._room_event(EventType.CHAT_CLOSE, self.room, self.records.agent, at, "Chat Close")

    def _first_department(self) -> Any:
        for message in self.stored:
            data = message.get("transferData") or {}
            if message.get("t") == _TRANSFER and data.get("scope") == "department":
                return data.get("previousDepartment")
        return self.room.get("departmentId")

    # -- messages --------------------------------------------------------------------------------

    def _messages(self) -> None:
        visitor_token = self.visitor.get("token") or (self.room.get("v") or {}).get("token")
        copies: dict[str, list[Mapping[str, Any]]] = {}
        for message in self.records.messages:  # the versions an edit replaced, when kept
            if message.get("_hidden") is True and message.get("parent"):
                copies.setdefault(str(message["parent"]), []).append(message)
        for message in self.stored:
            kind = message.get("t")
            navigation = (
                kind == "livechat_navigation_history" and self.settings.navigation_in_history
            )
            if kind and not navigation:
                continue
            # Rocket.Chat tells the visitor's messages by their token (afterSaveMessage).
            token = message.get("token")
            by_visitor = bool(token) and (visitor_token is None or token == visitor_token)
            if not self.switches.sends("Visitor Messages" if by_visitor else "Agent Messages"):
                continue
            what = f"{'Visitor' if by_visitor else 'Agent'} message {message.get('_id')}"
            self._versions(message, copies.get(str(message.get("_id")), []), what)

    def _versions(
        self, message: Mapping[str, Any], copies: list[Mapping[str, Any]], what: str
    ) -> None:
        """A message's events: when written (built from the room read just before it was
        saved), then on each edit (the room read when editing), with ``editedAt``.

        Each hidden copy holds a version as it was before an edit, dated (``editedAt``) by the
        edit that replaced it; the message's own ``editedAt`` is set a moment after its copy's.
        So the first version and the last are exact, and a version in between is known only to
        a few milliseconds: its identity cannot be rebuilt.
        """
        written = _iso(message.get("ts"))
        if not message.get("editedAt"):
            self._message_event(message, written, _just_before(written), what)
            return
        earlier = sorted(
            copies, key=lambda copy: _iso(copy.get("editedAt") or copy.get("_updatedAt"))
        )
        if not earlier:
            self.lost.append(Unrebuildable(
                self.room_id, EventType.MESSAGE.value, what, written,
                "edited since, and Rocket.Chat kept no edit history (Message_KeepHistory "
                "off): only its edited version can be rebuilt",
                message_identity(self.room_id, str(message.get("_id")), written),
            ))  # fmt: skip
        else:
            first = _version(earlier[0], message)
            first.pop("editedAt", None)  # as first written
            self._message_event(first, written, _just_before(written), what)
        for replaced in earlier[:-1]:  # each copy but the last was replaced by an edit in between
            edited = _iso(replaced.get("editedAt"))
            self.lost.append(Unrebuildable(
                self.room_id, EventType.MESSAGE.value, f"{what}, edited", edited,
                "edited again since: Rocket.Chat keeps this version's text but not the exact "
                "time of its edit",
                message_identity(self.room_id, str(message.get("_id")), edited),
                within=_EDIT_TOLERANCE,
            ))  # fmt: skip
        edited = _iso(message.get("editedAt"))
        self._message_event(_version(message, message), edited, edited, f"{what}, edited")

    def _message_event(self, message: Mapping[str, Any], at: str, read: str, what: str) -> None:
        """``read``: when Rocket.Chat read the room it built the event from."""
        room, agent = self._state_at(read)  # served by whoever served it then
        payload = build_message_event(
            room, self.visitor, message, agent=agent, settings=self.settings, at=read,
            messages=self.timeline,
        )  # fmt: skip
        self._keep(payload, at, what)

    # -- building --------------------------------------------------------------------------------

    def _room_event(
        self,
        event_type: EventType,
        room: Mapping[str, Any],
        agent: Mapping[str, Any] | None,
        at: str,
        what: str,
        **extra: Any,
    ) -> None:
        payload = build_room_event(
            event_type, room, self.visitor, agent=agent, messages=self.timeline,
            settings=self.settings, at=at, **extra,
        )  # fmt: skip
        self._keep(payload, at, what)

    def _keep(self, payload: dict[str, Any], at: str, what: str) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            event = parse_event(body)
        except ContractError as exc:
            self.lost.append(Unrebuildable(self.room_id, str(payload.get("type")), what, at,
                                           f"rebuilt, it breaks the contract: {exc.summary()}"))  # fmt: skip
            return
        identity = event_identity(event)
        if identity is None:
            return
        self.found.append(ExpectedEvent(self.room_id, event.type, what, at, body, identity))


def _visible(messages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The visible stored messages, oldest first."""
    visible = [m for m in messages if m.get("_hidden") is not True]
    return sorted(visible, key=lambda m: _iso(m.get("ts")))


def _takes(
    messages: list[Mapping[str, Any]], visitor: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The messages that mark an agent's assignment, oldest first: ``command`` "connected" (the
    ``uj`` after it with an empty ``msg``, where a version wrote no command message)."""
    visitor_id = visitor.get("_id")

    def by_agent(message: Mapping[str, Any]) -> bool:
        return (message.get("u") or {}).get("_id") not in (None, visitor_id)

    commands = [m for m in messages
                if m.get("t") == "command" and m.get("msg") == "connected" and by_agent(m)]  # fmt: skip
    if commands:
        return commands
    return [m for m in messages if m.get("t") == "uj" and not m.get("msg") and by_agent(m)]


def _version(version: Mapping[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
    """A version of ``message`` as a record of its own (a hidden copy's text, the message's id)."""
    record = {key: value for key, value in version.items()
              if key not in ("_hidden", "parent", "editedBy")}  # fmt: skip
    record["_id"] = message.get("_id")
    return record


def _seconds(earlier: str, later: str) -> float:
    """Seconds from one ISO date to another."""
    return (_parse(later) - _parse(earlier)).total_seconds()


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _just_before(at: str) -> str:
    """A millisecond before ``at``: the room as read before a message was saved."""
    return format_date(_parse(at) - timedelta(milliseconds=1))


def _last(items: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    found = None
    for found in items:  # noqa: B007 - the last one is wanted
        pass
    return found


def _iso(value: Any) -> str:
    """A date as Rocket.Chat writes it (ISO strings sort as the times they name)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return format_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
    if isinstance(value, datetime):
        return format_date(value)
    return str(value)
