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
Chat Taken                    each agent's join (``uj``) message; the latest: ``servedBy``
Chat Forwarded                each ``livechat_transfer_history`` message (to an agent or
                              a department)
Chat Close                    ``closedAt``, ``closedBy``, ``closer``, the closing message
Visitor and Agent Messages    each message; an edited one also as first written, when
                              Rocket.Chat kept its history (hidden edit copies)
Chat Queued                   only for a room in the queue now (whether Rocket.Chat sent
                              it before depends on its routing, which leaves no trace)
============================  ==========================================================

Not rebuilt, for lack of a trace: Lead Capture (the emails and phones it added are merged into
the visitor), Chat Edit (edits after close leave no record), Offline Messages (no room), the
original text of a message edited while Rocket.Chat kept no edit history (reported as such).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
_CLOSE = "livechat-close"


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
        self.found: list[ExpectedEvent] = []
        self.lost: list[Unrebuildable] = []
        self.timeline: list[tuple[str, Mapping[str, Any] | None, Any]] = []
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
        self._room_event(EventType.CHAT_START, room, None, created, "Chat Start")

    def _queued(self) -> None:
        if not (self.in_queue and self.switches.sends("Chat Queued")):
            return
        at = _iso(self.room.get("queuedAt") or self.room.get("ts"))
        room = {key: value for key, value in self.room.items() if key != "servedBy"}
        self._room_event(EventType.CHAT_QUEUED, room, None, at, "Chat Queued")

    def _assignments(self) -> None:
        """Takes and transfers, in order: each take a Chat Taken, each transfer a Chat Forwarded
        (to an agent: after the new agent's Chat Taken, as Rocket.Chat sends them). Records who
        served the room and its department over time, for the events in between."""
        served: Mapping[str, Any] | None = None  # servedBy as it was
        before: Mapping[str, Any] | None = None  # servedBy before the latest take
        department = self._first_department()
        self.timeline = [("", None, department)]
        markers = [
            m for m in self._stored() if _is_take(m, self.visitor) or m.get("t") == _TRANSFER
        ]
        latest_take = _last(m for m in markers if m.get("t") != _TRANSFER)
        current = self.room.get("servedBy")
        if latest_take is None and isinstance(current, Mapping):
            # Rocket.Chat kept no join message: the room's servedBy tells the one take it knows.
            served = dict(current)
            self.timeline.append((_iso(served.get("ts")), served, department))
            self._taken(served, department, _iso(served.get("ts")))
        for marker in markers:
            at = _iso(marker.get("ts"))
            if marker.get("t") != _TRANSFER:
                agent = marker.get("u") or {}
                before, served = (
                    served,
                    {"_id": agent.get("_id"), "username": agent.get("username"), "ts": at},
                )
                if (
                    marker is latest_take
                    and isinstance(current, Mapping)
                    and current.get("_id") == agent.get("_id")
                ):
                    served = dict(current)  # the exact assignment time
                self.timeline.append((at, served, department))
                self._taken(served, department, at)
                continue
            data = marker.get("transferData") or {}
            scope = data.get("scope")
            if scope == "agent":
                target = data.get("transferredTo") or {}
                # The new agent's take usually comes first: the agent before is the one before it.
                taken_over = served is not None and served.get("_id") == target.get("_id")
                old = before if taken_over else served
                new = served if taken_over and served is not None else {
                    "_id": target.get("_id"), "username": target.get("username"), "ts": at}  # fmt: skip
                if self.switches.sends("Forwarding"):
                    room = {**self.room, "departmentId": department, "servedBy": dict(new)}
                    self._room_event(EventType.CHAT_FORWARDED, room, self.records.user(new.get("_id")), at,
                                     f"Chat Forwarded to {new.get('username')}",
                                     old_served_by=dict(old) if old else None)  # fmt: skip
            elif scope == "department":
                previous = data.get("previousDepartment") or department
                department = (data.get("nextDepartment") or {}).get("_id") or department
                served = None  # back in the department's queue until someone takes it
                self.timeline.append((at, None, department))
                if self.switches.sends("Forwarding"):
                    room = {key: v for key, v in self.room.items() if key != "servedBy"}
                    room["departmentId"] = department
                    self._room_event(EventType.CHAT_FORWARDED, room, None, at,
                                     f"Chat Forwarded to department {department}",
                                     old_department_id=previous)  # fmt: skip
            else:  # back to the queue; its Chat Queued leaves no reliable trace
                served = None
                self.timeline.append((at, None, department))

    def _state_at(self, at: str) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
        """The room as it was at ``at`` (who served it, its department) and that agent."""
        served: Mapping[str, Any] | None = None
        department: Any = self.room.get("departmentId")
        for moment, who, where in self.timeline:
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
        closing = _last(m for m in self._stored() if m.get("t") == _CLOSE)
        at = max(_iso(closed), _iso(closing.get("ts")) if closing else _iso(closed))
        self._room_event(EventType.CHAT_CLOSE, self.room, self.records.agent, at, "Chat Close")

    def _first_department(self) -> Any:
        for message in self._stored():
            data = message.get("transferData") or {}
            if message.get("t") == _TRANSFER and data.get("scope") == "department":
                return data.get("previousDepartment")
        return self.room.get("departmentId")

    # -- messages --------------------------------------------------------------------------------

    def _messages(self) -> None:
        visitor_id = self.visitor.get("_id")
        copies: dict[str, list[Mapping[str, Any]]] = {}
        for message in self.records.messages:  # the versions an edit replaced, when kept
            if message.get("_hidden") is True and message.get("parent"):
                copies.setdefault(str(message["parent"]), []).append(message)
        for message in self._stored():
            kind = message.get("t")
            navigation = (
                kind == "livechat_navigation_history" and self.settings.navigation_in_history
            )
            if kind and not navigation:
                continue
            author = message.get("u") or {}
            by_visitor = bool(message.get("token")) or author.get("_id") == visitor_id
            if not self.switches.sends("Visitor Messages" if by_visitor else "Agent Messages"):
                continue
            what = f"{'Visitor' if by_visitor else 'Agent'} message {message.get('_id')}"
            if not message.get("editedAt"):
                self._message_event(message, _iso(message.get("ts")), what)
                continue
            # Sent when written, then again on each edit (with editedAt).
            earlier = sorted(copies.get(str(message.get("_id")), []),
                             key=lambda copy: _iso(copy.get("_updatedAt") or copy.get("ts")))  # fmt: skip
            if not earlier:
                written = _iso(message.get("ts"))
                self.lost.append(Unrebuildable(
                    self.room_id, EventType.MESSAGE.value, what, written,
                    "edited since, and Rocket.Chat kept no edit history (Message_KeepHistory "
                    "off): only its edited version can be rebuilt",
                    message_identity(self.room_id, str(message.get("_id")), written),
                ))  # fmt: skip
            versions = [*earlier, message]
            for number, version in enumerate(versions):
                record = {key: value for key, value in version.items()
                          if key not in ("_hidden", "parent", "editedBy")}  # fmt: skip
                record["_id"] = message.get("_id")
                if number == 0 and earlier:
                    record.pop("editedAt", None)  # as first written
                    self._message_event(record, _iso(message.get("ts")), what)
                else:
                    self._message_event(record, _iso(record.get("editedAt")), f"{what}, edited")

    def _message_event(self, message: Mapping[str, Any], at: str, what: str) -> None:
        room, agent = self._state_at(at)  # served by whoever served it then
        payload = build_message_event(
            room, self.visitor, message, agent=agent, settings=self.settings, at=at,
            messages=self.records.messages,
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
            event_type, room, self.visitor, agent=agent, messages=self.records.messages,
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

    def _stored(self) -> list[Mapping[str, Any]]:
        """The visible stored messages, oldest first."""
        visible = [m for m in self.records.messages if m.get("_hidden") is not True]
        return sorted(visible, key=lambda m: _iso(m.get("ts")))


def _is_take(message: Mapping[str, Any], visitor: Mapping[str, Any]) -> bool:
    author = message.get("u") or {}
    return message.get("t") == "uj" and author.get("_id") != visitor.get("_id")


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
