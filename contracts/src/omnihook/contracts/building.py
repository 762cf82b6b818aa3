"""Rocket.Chat's ``sendToCRM`` in Python: each webhook payload, built from the records Rocket.Chat
keeps, exactly as Rocket.Chat builds it.

The records are the documents Rocket.Chat stores and its REST API returns, dates as ISO strings:
the room (``GET /api/v1/livechat/rooms``), the visitor (``/livechat/visitors.info``), the agent
user (``/users.info``) and the room's messages as stored (``/livechat/:rid/messages``,
``/chat.syncMessages``), system messages and hidden edit copies included: the builders filter them
as Rocket.Chat does. Python ``datetime`` values are accepted wherever a date goes.

Start of a chat (current Rocket.Chat sends it while creating the room, so no message and no
agent yet)::

    >>> from omnihook.contracts.building import build_room_event
    >>> room = {"_id": "R1", "fname": "Jane Doe", "ts": "2025-01-01T10:00:00.000Z",
    ...         "lm": "2025-01-01T10:00:00.000Z", "departmentId": "D1",
    ...         "v": {"_id": "V1", "username": "guest-1", "token": "tok"}}
    >>> visitor = {"_id": "V1", "token": "tok", "username": "guest-1", "name": "Jane Doe",
    ...            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    ...                         "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}
    >>> start = build_room_event("LivechatSessionStart", room, visitor)
    >>> start["visitor"]["os"], start["visitor"]["browser"], start["messages"]
    ('Windows 10', 'Chrome 131.0.0.0', [])

A close, with the agent user and the whole stored history (the ``uj`` message is skipped, the
``livechat-close`` one kept and marked)::

    >>> from omnihook.contracts.building import BuildSettings
    >>> agent = {"_id": "A1", "username": "smith", "name": "Agent Smith",
    ...          "emails": [{"address": "smith@corp.example"}], "customFields": {"team": "B2"}}
    >>> room |= {"servedBy": {"_id": "A1", "username": "smith", "ts": "2025-01-01T10:00:05.000Z"},
    ...          "closedAt": "2025-01-01T10:05:00.000Z", "closer": "user",
    ...          "closedBy": {"_id": "A1", "username": "smith"}}
    >>> messages = [
    ...     {"_id": "M1", "rid": "R1", "msg": "hi", "ts": "2025-01-01T10:00:01.000Z", "token": "tok",
    ...      "u": {"_id": "V1", "username": "guest-1"}, "_updatedAt": "2025-01-01T10:00:01.000Z"},
    ...     {"_id": "M2", "rid": "R1", "msg": "smith", "t": "uj", "ts": "2025-01-01T10:00:05.002Z",
    ...      "u": {"_id": "A1", "username": "smith"}, "_updatedAt": "2025-01-01T10:00:05.002Z"},
    ...     {"_id": "M3", "rid": "R1", "msg": "Solved", "t": "livechat-close",
    ...      "ts": "2025-01-01T10:05:00.004Z", "u": {"_id": "A1", "username": "smith"},
    ...      "_updatedAt": "2025-01-01T10:05:00.004Z"}]
    >>> settings = BuildSettings(agent_custom_fields=frozenset({"team"}))
    >>> close = build_room_event("LivechatSession", room, visitor, agent=agent,
    ...                          messages=messages, settings=settings)
    >>> [(m["_id"], m.get("agentId"), m.get("closingMessage")) for m in close["messages"]]
    [('M1', None, None), ('M3', 'A1', True)]
    >>> close["agent"], close["closer"]
    ({'_id': 'A1', 'username': 'smith', 'name': 'Agent Smith', 'customFields': {'team': 'B2'}, 'email': 'smith@corp.example'}, 'user')

An event as it was at a moment (``at``): the history up to then, and ``lastMessageAt`` as the
room's ``lm`` was then; every other room field is what the records hold now::

    >>> early = build_room_event("LivechatSessionTaken", room, visitor, agent=agent,
    ...                          messages=messages, at="2025-01-01T10:00:05.000Z")
    >>> [m["_id"] for m in early["messages"]], early["lastMessageAt"]
    (['M1'], '2025-01-01T10:00:01.000Z')

Everything built here passes :func:`omnihook.contracts.check_payload` with no problem and no note.
Keys come in Rocket.Chat's order. What Rocket.Chat leaves undefined is absent; a ``None`` in a
record is ``null`` on the wire, as ``JSON.stringify`` writes it.

Source: ``apps/meteor/app/livechat/server/hooks/sendToCRM.ts`` and ``getLivechatRoomGuestInfo``
(``lib/guests.ts``, earlier ``Livechat.ts``), ``normalizeMessageFileUpload.ts``,
``hooks/offlineMessage.ts``; notes with file references in ``docs/reference/rocketchat-rest-api.md``
section 6.
"""

from __future__ import annotations

import functools
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, overload
from urllib.parse import quote

from .dates import format_date
from .event_type import EventType

__all__ = [
    "CLOSING_MESSAGE_TYPE",
    "NAVIGATION_MESSAGE_TYPE",
    "ROOM_EVENT_TYPES",
    "SETTING_IDS",
    "BuildSettings",
    "RoomEventType",
    "RoomRecords",
    "RoomTimeline",
    "build_lead_capture",
    "build_message_event",
    "build_offline_message",
    "build_room_event",
    "guest_info",
    "history",
    "history_entry",
    "last_message_at",
    "parse_user_agent",
]

CLOSING_MESSAGE_TYPE: Final = "livechat-close"
NAVIGATION_MESSAGE_TYPE: Final = "livechat_navigation_history"

RoomEventType = Literal[
    "LivechatSessionStart",
    "LivechatSessionQueued",
    "LivechatSessionTaken",
    "LivechatSessionForwarded",
    "LivechatSession",
    "LivechatEdit",
]
"""The events ``sendToCRM`` sends with the room's whole visible history."""

ROOM_EVENT_TYPES: tuple[RoomEventType, ...] = (
    "LivechatSessionStart",
    "LivechatSessionQueued",
    "LivechatSessionTaken",
    "LivechatSessionForwarded",
    "LivechatSession",
    "LivechatEdit",
)

# getAdditionalFieldsByType: the room fields each type adds after `messages`, in this order.
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "LivechatSessionStart": ("departmentId",),
    "LivechatSessionQueued": ("departmentId",),
    "LivechatSessionTaken": ("departmentId", "servedBy"),
    "LivechatSessionForwarded": ("departmentId", "servedBy", "oldDepartmentId", "oldServedBy"),
    "LivechatSession": ("departmentId", "servedBy", "closedAt", "closedBy", "closer"),
    "LivechatEdit": (),
    "Message": (),
    "LeadCapture": (),
}

SETTING_IDS: tuple[str, ...] = (
    "Livechat_Visitor_navigation_as_a_message",
    "Send_visitor_navigation_history_livechat_webhook_request",
    "Accounts_CustomFields",
    "Site_Url",
)
"""The Rocket.Chat settings :meth:`BuildSettings.from_settings` reads."""


@dataclass(frozen=True)
class BuildSettings:
    """The workspace settings that change a payload.

    ``navigation_in_history``: navigation messages (``livechat_navigation_history``) are sent, in
    histories and as ``Message`` events; Rocket.Chat does so only when both
    ``Livechat_Visitor_navigation_as_a_message`` and
    ``Send_visitor_navigation_history_livechat_webhook_request`` are on.

    ``agent_custom_fields``: the keys of ``Accounts_CustomFields`` marked
    ``sendToIntegrations: true``; the agent's other custom fields never reach the payload.

    ``site_url``: the workspace's ``Site_Url``, for a file message's ``fileUpload``
    (``<site_url>/file-upload/<file id>/<name>``). ``None`` leaves ``fileUpload`` out, as
    Rocket.Chat does when the upload's record is gone. Rocket.Chat appends ``?token=<JWT>`` when
    JSON web tokens for files are on; that token cannot be rebuilt and is never added here.

    >>> BuildSettings.from_settings({
    ...     "Accounts_CustomFields": '{"team": {"type": "text", "sendToIntegrations": true}}',
    ...     "Livechat_Visitor_navigation_as_a_message": True,
    ...     "Send_visitor_navigation_history_livechat_webhook_request": False})
    BuildSettings(navigation_in_history=False, agent_custom_fields=frozenset({'team'}), site_url=None)
    """

    navigation_in_history: bool = False
    agent_custom_fields: frozenset[str] = field(default_factory=frozenset)
    site_url: str | None = None

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> BuildSettings:
        """From setting values by id (:data:`SETTING_IDS`; what ``GET /api/v1/settings/:_id``
        answers as ``value``). Missing settings take Rocket.Chat's defaults; an
        ``Accounts_CustomFields`` that is not valid JSON marks no field, as Rocket.Chat does."""
        navigation = bool(values.get("Livechat_Visitor_navigation_as_a_message")) and bool(
            values.get("Send_visitor_navigation_history_livechat_webhook_request")
        )
        site_url = values.get("Site_Url")
        return cls(
            navigation_in_history=navigation,
            agent_custom_fields=_integration_fields(values.get("Accounts_CustomFields")),
            site_url=site_url if isinstance(site_url, str) and site_url else None,
        )


def _integration_fields(value: Any) -> frozenset[str]:
    if not isinstance(value, str) or not value.strip():
        return frozenset()
    try:
        declared = json.loads(value)
    except ValueError:
        return frozenset()
    if not isinstance(declared, dict):
        return frozenset()
    return frozenset(
        key
        for key, spec in declared.items()
        if isinstance(spec, dict) and spec.get("sendToIntegrations") is True
    )


_DEFAULT_SETTINGS = BuildSettings()


# -- the envelope: getLivechatRoomGuestInfo ------------------------------------------------------


def guest_info(
    room: Mapping[str, Any],
    visitor: Mapping[str, Any],
    *,
    agent: Mapping[str, Any] | None = None,
    settings: BuildSettings = _DEFAULT_SETTINGS,
    at: str | datetime | None = None,
    messages: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The room envelope every room event starts with (``getLivechatRoomGuestInfo``).

    ``agent`` is the user record of ``room.servedBy`` (``None`` when the room is not served or
    the user is gone: no ``agent`` block, as Rocket.Chat sends none). With ``at``,
    ``lastMessageAt`` is the room's ``lm`` as it was then (see :func:`last_message_at`, which
    reads ``messages``); without, it is the room's ``lm``.
    """
    info: dict[str, Any] = {"_id": room.get("_id")}
    fname = room.get("fname")
    if _truthy(fname):  # room.fname || room.label
        info["label"] = fname
    else:
        _copy(info, "label", room, "label")
    _copy(info, "topic", room, "topic")
    _copy(info, "createdAt", room, "ts", date=True)
    if at is not None:
        info["lastMessageAt"] = last_message_at(room, messages, at)
    else:
        _copy(info, "lastMessageAt", room, "lm", date=True)
    _copy(info, "tags", room, "tags")
    _copy(info, "customFields", room, "livechatData")
    info["visitor"] = _visitor_block(visitor)
    if agent is not None:
        info["agent"] = _agent_block(agent, settings)
    crm_data = room.get("crmData")
    if _truthy(crm_data):
        info["crmData"] = crm_data
    return info


def _visitor_block(visitor: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for key in ("_id", "token", "name", "username", "department", "ip"):
        _copy(block, key, visitor, key)
    user_agent = visitor.get("userAgent")
    os_name, browser = parse_user_agent(user_agent if isinstance(user_agent, str) else "")
    if os_name is not None:
        block["os"] = os_name
    if browser is not None:
        block["browser"] = browser
    _copy(block, "customFields", visitor, "livechatData")
    emails, phones = visitor.get("visitorEmails"), visitor.get("phone")
    if _non_empty(emails):
        block["email"] = emails
    if _non_empty(phones):
        block["phone"] = phones
    return block


def _agent_block(agent: Mapping[str, Any], settings: BuildSettings) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for key in ("_id", "username", "name"):
        _copy(block, key, agent, key)
    custom = agent.get("customFields")
    if _truthy(custom) and isinstance(custom, Mapping):  # parseAgentCustomFields
        block["customFields"] = {
            key: value for key, value in custom.items() if key in settings.agent_custom_fields
        }
    emails = agent.get("emails")
    if _non_empty(emails) and isinstance(emails, Sequence) and isinstance(emails[0], Mapping):
        _copy(block, "email", emails[0], "address")
    return block


# -- the history -------------------------------------------------------------------------------


def history(
    messages: Iterable[Mapping[str, Any]],
    visitor_username: str | None,
    *,
    settings: BuildSettings = _DEFAULT_SETTINGS,
    at: str | datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``messages`` of a room event: the visible messages (``_hidden`` edit copies left out)
    sorted by ``ts``, those with a system type ``t`` skipped except ``livechat-close`` and, when
    ``settings.navigation_in_history``, navigation messages; with ``at``, only those with
    ``ts`` ≤ ``at``. Thread replies stay in. ``visitor_username`` tells the visitor's messages
    (no ``agentId``) from everyone else's. ``messages`` may be a :class:`RoomTimeline` (the same
    result, without sorting and filtering every message again)."""
    if isinstance(messages, RoomTimeline):
        return messages.history(visitor_username, settings=settings, at=at)
    limit = _instant(at) if at is not None else None
    visible = [m for m in messages if m.get("_hidden") is not True]
    if limit is not None:
        visible = [m for m in visible if _instant(m.get("ts")) <= limit]
    visible.sort(key=lambda m: _instant(m.get("ts")))  # stable, as MongoDB's sort on ts
    return [
        history_entry(m, visitor_username, settings=settings) for m in visible if _sent(m, settings)
    ]


def _sent(message: Mapping[str, Any], settings: BuildSettings) -> bool:
    """``sendMessageType``: whether a message of this type goes out at all."""
    kind = message.get("t")
    if not _truthy(kind):
        return True
    if kind == CLOSING_MESSAGE_TYPE:
        return True
    return kind == NAVIGATION_MESSAGE_TYPE and settings.navigation_in_history


def history_entry(
    message: Mapping[str, Any],
    visitor_username: str | None,
    *,
    settings: BuildSettings = _DEFAULT_SETTINGS,
) -> dict[str, Any]:
    """One entry of ``messages``, from one stored message (no filtering here).

    ``{u, _id, username, msg, blocks?, ts, rid, editedAt?, agentId?, navigation?,
    closingMessage?, file?, attachments?, fileUpload?, _updatedAt}``: ``msg`` is the text or, when
    there is none, the JSON of ``blocks`` (absent when there are neither); ``agentId`` is the
    author's ``_id`` whenever the author's username is not the visitor's.
    """
    author = message.get("u")
    author_map: Mapping[str, Any] = author if isinstance(author, Mapping) else {}
    entry: dict[str, Any] = {}
    _put(entry, "u", author, present="u" in message)
    _copy(entry, "_id", message, "_id")
    _put(entry, "username", author_map.get("username"), present="username" in author_map)
    text = message.get("msg")
    if _truthy(text):
        entry["msg"] = text
    elif "blocks" in message:
        entry["msg"] = _js_json(message["blocks"])
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        entry["blocks"] = blocks
    _copy(entry, "ts", message, "ts", date=True)
    _copy(entry, "rid", message, "rid")
    if _truthy(message.get("editedAt")):
        entry["editedAt"] = _date(message["editedAt"])
    if author_map.get("username") != visitor_username:
        _put(entry, "agentId", author_map.get("_id"), present="_id" in author_map)
    kind = message.get("t")
    if kind == NAVIGATION_MESSAGE_TYPE:
        _copy(entry, "navigation", message, "navigation")
    if kind == CLOSING_MESSAGE_TYPE:
        entry["closingMessage"] = True
    file = message.get("file")
    if _truthy(file):
        entry["file"] = file
        _copy(entry, "attachments", message, "attachments")
        upload = _file_upload(file, settings)
        if upload is not None:
            entry["fileUpload"] = upload
    _copy(entry, "_updatedAt", message, "_updatedAt", date=True)
    return entry


def _file_upload(file: Any, settings: BuildSettings) -> dict[str, Any] | None:
    """``normalizeMessageFileUpload``, with the message's ``file`` standing for the Uploads
    record (same ``_id``, ``name``, ``type``, ``size``)."""
    if settings.site_url is None or not isinstance(file, Mapping) or not file.get("_id"):
        return None
    name = file.get("name")
    path = ""
    if _truthy(name):
        # encodeURI leaves these as they are.
        encoded = quote(str(name), safe="-_.!~*'();/?:@&=+$,#")
        path = f"{settings.site_url.rstrip('/')}/file-upload/{file['_id']}/{encoded}"
    upload: dict[str, Any] = {"publicFilePath": path}
    _copy(upload, "type", file, "type")
    _copy(upload, "size", file, "size")
    return upload


def last_message_at(
    room: Mapping[str, Any], messages: Iterable[Mapping[str, Any]], at: str | datetime
) -> str:
    """The room's ``lm`` as it was at ``at``: the ``ts`` of the latest message without a system
    type (and not a hidden edit copy) sent by then, else the room's own ``ts`` (a new room's
    ``lm`` is its creation time). Edits and system messages do not move ``lm``. ``messages`` may
    be a :class:`RoomTimeline` (a bisection instead of a pass over every message)."""
    if isinstance(messages, RoomTimeline):
        return messages.last_message_at(room, at)
    limit = _instant(at)
    latest = _instant(room.get("ts"))
    for message in messages:
        if message.get("_hidden") is True or _truthy(message.get("t")):
            continue
        ts = _instant(message.get("ts"))
        if latest < ts <= limit:
            latest = ts
    return format_date(latest)


# -- many events of one room -------------------------------------------------------------------


class RoomTimeline(Sequence[Mapping[str, Any]]):
    """A room's stored messages read once, to build many events of the room cheaply.

    Rebuilding every event of a room means one history and one ``lastMessageAt`` per event, each
    a pass over every message (parsing each date, sorting): quadratic in the room's size. A
    timeline sorts the visible messages by ``ts`` once, keeps the times of the messages that move
    the room's ``lm`` sorted once, and builds each history entry once (per visitor username and
    settings); the history and ``lastMessageAt`` at a moment are then a bisection, plus copying
    the entries out. Every builder that takes ``messages`` takes a timeline instead, with the
    same output; it is a sequence of the stored messages, in their stored order::

        timeline = RoomTimeline(records.messages)          # or records.timeline
        for message in ...:
            build_message_event(room, visitor, message, messages=timeline, at=...)

    The messages are read when the timeline is made: make another one after they change.

    >>> timeline = RoomTimeline([
    ...     {"_id": "M2", "msg": "later", "ts": "2025-01-01T10:00:09.000Z", "u": {"username": "smith"}},
    ...     {"_id": "M1", "msg": "hi", "ts": "2025-01-01T10:00:01.000Z", "u": {"username": "guest-1"}},
    ...     {"_id": "S1", "t": "uj", "msg": "", "ts": "2025-01-01T10:00:05.000Z", "u": {"username": "smith"}}])
    >>> [e["_id"] for e in history(timeline, "guest-1", at="2025-01-01T10:00:05.000Z")]
    ['M1']
    >>> last_message_at({"ts": "2025-01-01T10:00:00.000Z"}, timeline, "2025-01-01T10:00:08.000Z")
    '2025-01-01T10:00:01.000Z'
    >>> len(timeline), timeline[0]["_id"]
    (3, 'M2')
    """

    def __init__(self, messages: Iterable[Mapping[str, Any]]) -> None:
        self._messages: tuple[Mapping[str, Any], ...] = tuple(messages)
        dated = [(_instant(m.get("ts")), m) for m in self._messages if m.get("_hidden") is not True]
        dated.sort(key=lambda pair: pair[0])  # stable, as MongoDB's sort on ts
        self._visible = [message for _, message in dated]
        self._visible_at = [moment for moment, _ in dated]
        # What moves lm: the messages without a system type (the order is kept: still sorted).
        self._chat_at = [moment for moment, m in dated if not _truthy(m.get("t"))]
        self._entries: dict[tuple[str | None, BuildSettings], list[dict[str, Any] | None]] = {}

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        return self._messages[index]

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._messages)

    def history(
        self,
        visitor_username: str | None,
        *,
        settings: BuildSettings = _DEFAULT_SETTINGS,
        at: str | datetime | None = None,
    ) -> list[dict[str, Any]]:
        """:func:`history` of these messages: fresh entries (their nested values are the
        records' own, as :func:`history_entry` leaves them)."""
        end = len(self._visible) if at is None else bisect_right(self._visible_at, _instant(at))
        key = (visitor_username, settings)
        entries = self._entries.get(key)
        if entries is None:
            entries = self._entries[key] = [
                history_entry(m, visitor_username, settings=settings)
                if _sent(m, settings)
                else None
                for m in self._visible
            ]
        return [_fresh(entry) for entry in entries[:end] if entry is not None]

    def last_message_at(self, room: Mapping[str, Any], at: str | datetime) -> str:
        """:func:`last_message_at` of ``room`` with these messages."""
        latest = _instant(room.get("ts"))
        found = bisect_right(self._chat_at, _instant(at))
        if found and self._chat_at[found - 1] > latest:
            latest = self._chat_at[found - 1]
        return format_date(latest)


def _fresh(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cached entry that a caller may change (``fileUpload`` is the entry's own)."""
    copied = dict(entry)
    upload = copied.get("fileUpload")
    if isinstance(upload, dict):
        copied["fileUpload"] = dict(upload)
    return copied


def _stored(messages: Iterable[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """The messages, read once (a timeline as it is)."""
    if isinstance(messages, RoomTimeline):
        return messages
    return list(messages)


# -- the events --------------------------------------------------------------------------------


def build_room_event(
    event_type: EventType | str,
    room: Mapping[str, Any],
    visitor: Mapping[str, Any],
    *,
    agent: Mapping[str, Any] | None = None,
    messages: Iterable[Mapping[str, Any]] = (),
    settings: BuildSettings = _DEFAULT_SETTINGS,
    at: str | datetime | None = None,
    old_served_by: Mapping[str, Any] | None = None,
    old_department_id: str | None = None,
) -> dict[str, Any]:
    """A room event with the room's whole history: Start, Queued, Taken, Forwarded, Close
    (``LivechatSession``) or Edit, as ``sendToCRM(type, room)`` makes it.

    ``room`` is the room as Rocket.Chat passes it: for Taken and Forwarded the room after the
    assignment (``servedBy`` the new agent), for Close the closed room. ``agent`` is the user
    record of ``room.servedBy``. A Forwarded event to an agent takes ``old_served_by`` (the
    room's ``servedBy`` before, ``{_id, username, ts}``), one to a department
    ``old_department_id`` (``room.departmentId`` already being the new one). ``at`` rebuilds the
    event as it was at that moment (the history up to then, ``lastMessageAt`` then). To build
    many events of one room, pass its messages as a :class:`RoomTimeline`.

    Per-type fields, after ``messages``: Start and Queued ``departmentId``; Taken
    ``departmentId, servedBy``; Forwarded ``departmentId, servedBy, oldDepartmentId,
    oldServedBy``; Close ``departmentId, servedBy, closedAt, closedBy, closer``; Edit none. Each
    is absent when the room does not hold it.
    """
    kind = _room_event_type(event_type)
    stored = _stored(messages)
    payload = guest_info(room, visitor, agent=agent, settings=settings, at=at, messages=stored)
    payload["type"] = kind
    payload["messages"] = history(stored, visitor.get("username"), settings=settings, at=at)
    extra: dict[str, Any] = dict(room)
    if old_served_by is not None:
        extra["oldServedBy"] = old_served_by
    if old_department_id is not None:
        extra["oldDepartmentId"] = old_department_id
    for key in _EXTRA_FIELDS[kind]:
        if key in extra:
            payload[key] = _dated(key, extra[key])
    return payload


def build_message_event(
    room: Mapping[str, Any],
    visitor: Mapping[str, Any],
    message: Mapping[str, Any],
    *,
    agent: Mapping[str, Any] | None = None,
    settings: BuildSettings = _DEFAULT_SETTINGS,
    at: str | datetime | None = None,
    messages: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``Message`` event of one saved (or edited) message: ``messages`` holds exactly it.

    Rocket.Chat sends it when the message is saved (the visitor-message switch when the message
    has a ``token``, the agent-message switch otherwise) and again on each edit, with
    ``editedAt``. With ``at`` (and the room's ``messages``), ``lastMessageAt`` is the room's
    ``lm`` then. Rocket.Chat builds the event from the room it read before saving the message
    and updates the room's ``lm`` only after the callbacks ran (``afterSaveMessage.ts``), so a
    new message's event carries the ``lm`` before it: rebuild it with ``at`` just before its
    ``ts``. An edit's event carries the room read when editing: ``at`` is its ``editedAt``.

    Raises ``ValueError`` for a system message Rocket.Chat never sends this way (any ``t`` but
    ``livechat-close`` and, when ``settings.navigation_in_history``, navigation).
    """
    if not _sent(message, settings):
        raise ValueError(f"Rocket.Chat sends no Message event for a {message.get('t')!r} message")
    payload = guest_info(
        room, visitor, agent=agent, settings=settings, at=at, messages=_stored(messages)
    )
    payload["type"] = "Message"
    payload["messages"] = [history_entry(message, visitor.get("username"), settings=settings)]
    return payload


def build_lead_capture(
    room: Mapping[str, Any],
    visitor: Mapping[str, Any],
    *,
    agent: Mapping[str, Any] | None = None,
    settings: BuildSettings = _DEFAULT_SETTINGS,
    at: str | datetime | None = None,
    messages: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``LeadCapture`` event: sent with ``messages: []`` after a visitor message matched the
    lead email or phone pattern and the matches were added to the visitor (``visitor`` is the
    record after that)."""
    payload = guest_info(
        room, visitor, agent=agent, settings=settings, at=at, messages=_stored(messages)
    )
    payload["type"] = "LeadCapture"
    payload["messages"] = []
    return payload


def build_offline_message(
    name: str | None, email: str | None, message: str | None, sent_at: str | datetime
) -> dict[str, Any]:
    """The ``LivechatOfflineMessage`` event of an offline-form submission
    (``hooks/offlineMessage.ts``): no room, the form's fields, ``email`` a plain string.

    >>> build_offline_message("Jane", "jane@example.com", "Call me", "2025-01-01T10:00:00Z")
    {'type': 'LivechatOfflineMessage', 'sentAt': '2025-01-01T10:00:00.000Z', 'visitor': {'name': 'Jane', 'email': 'jane@example.com'}, 'message': 'Call me'}
    """
    return {
        "type": "LivechatOfflineMessage",
        "sentAt": _date(sent_at),
        "visitor": {"name": name, "email": email},
        "message": message,
    }


def _room_event_type(event_type: EventType | str) -> str:
    kind = event_type.value if isinstance(event_type, EventType) else str(event_type)
    if kind not in ROOM_EVENT_TYPES:
        raise ValueError(
            f"{kind!r} is not built from the whole room; use build_message_event, "
            f"build_lead_capture or build_offline_message (room events: {', '.join(ROOM_EVENT_TYPES)})"
        )
    return kind


# -- the records as one bundle -----------------------------------------------------------------


@dataclass(frozen=True)
class RoomRecords:
    """What Rocket.Chat holds about one room: the room, its visitor, the users who served or
    joined it and every stored message (system messages and hidden edit copies included).

    >>> records = RoomRecords(
    ...     {"_id": "R1", "ts": "2025-01-01T10:00:00.000Z", "servedBy": {"_id": "A1"}},
    ...     {"_id": "V1", "username": "guest-1"},
    ...     users=({"_id": "A1", "username": "smith"},))
    >>> records.agent["username"], records.event("LivechatEdit")["agent"]
    ('smith', {'_id': 'A1', 'username': 'smith'})
    """

    room: Mapping[str, Any]
    visitor: Mapping[str, Any]
    messages: Sequence[Mapping[str, Any]] = ()
    users: Sequence[Mapping[str, Any]] = ()

    @property
    def room_id(self) -> str:
        return str(self.room.get("_id"))

    @functools.cached_property
    def timeline(self) -> RoomTimeline:
        """The messages as a :class:`RoomTimeline`, made the first time it is asked for (from
        the messages as they are then): pass it as ``messages`` to build many events of the
        room; the methods below use it."""
        return RoomTimeline(self.messages)

    @property
    def agent(self) -> Mapping[str, Any] | None:
        """The user record of ``room.servedBy`` (``None`` when not served or the user is gone)."""
        served_by = self.room.get("servedBy")
        if not isinstance(served_by, Mapping):
            return None
        return self.user(served_by.get("_id"))

    def user(self, user_id: Any) -> Mapping[str, Any] | None:
        return next((u for u in self.users if u.get("_id") == user_id), None)

    def message(self, message_id: str) -> Mapping[str, Any]:
        """The stored message ``message_id`` (the visible one, not a hidden edit copy)."""
        for message in self.messages:
            if message.get("_id") == message_id and message.get("_hidden") is not True:
                return message
        raise KeyError(message_id)

    def event(
        self,
        event_type: EventType | str,
        *,
        settings: BuildSettings = _DEFAULT_SETTINGS,
        at: str | datetime | None = None,
        old_served_by: Mapping[str, Any] | None = None,
        old_department_id: str | None = None,
    ) -> dict[str, Any]:
        """:func:`build_room_event` from these records."""
        return build_room_event(
            event_type, self.room, self.visitor, agent=self.agent, messages=self.timeline,
            settings=settings, at=at, old_served_by=old_served_by,
            old_department_id=old_department_id,
        )  # fmt: skip

    def message_event(
        self,
        message: str | Mapping[str, Any],
        *,
        settings: BuildSettings = _DEFAULT_SETTINGS,
        at: str | datetime | None = None,
    ) -> dict[str, Any]:
        """:func:`build_message_event` of a message (by ``_id`` or the record itself)."""
        record = self.message(message) if isinstance(message, str) else message
        return build_message_event(
            self.room, self.visitor, record, agent=self.agent, settings=settings, at=at,
            messages=self.timeline if at is not None else (),
        )  # fmt: skip

    def lead_capture(
        self, *, settings: BuildSettings = _DEFAULT_SETTINGS, at: str | datetime | None = None
    ) -> dict[str, Any]:
        """:func:`build_lead_capture` from these records."""
        return build_lead_capture(
            self.room, self.visitor, agent=self.agent, settings=settings, at=at,
            messages=self.timeline if at is not None else (),
        )  # fmt: skip


# -- user agents: a small ua-parser-js -----------------------------------------------------------

_WINDOWS_VERSIONS = {"10.0": "10", "6.4": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista",
                     "5.2": "XP", "5.1": "XP", "5.01": "2000", "5.0": "2000", "4.0": "NT"}  # fmt: skip
_I = re.IGNORECASE
# (pattern, name, or None to take the name from group "name"); group "v" is the version.
_OS_RULES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"windows phone(?: os)?[ /]?(?P<v>[\d.]*)", _I), "Windows Phone"),
    (re.compile(r"windows nt ?(?P<v>[\d.]+)", _I), "Windows"),
    (re.compile(r"ip(?:hone|ad|od)\b(?:.*? os (?P<v>\w+) like mac)?", _I), "iOS"),
    (re.compile(r"cros \w+(?: (?P<v>[\w.]+))?", _I), "Chromium OS"),
    (re.compile(r"(?P<name>android)[-/ ]?(?P<v>[\w.]*)", _I), None),
    (re.compile(r"mac os x ?(?P<v>[\w.]*)", _I), "Mac OS"),
    (re.compile(r"(?P<name>ubuntu|debian|fedora|centos|mint|suse|gentoo|arch)[/ ]?(?P<v>[\w.]*)", _I), None),
    (re.compile(r"(?P<name>linux) ?(?P<v>[\w.]*)", _I), None),
)  # fmt: skip
_BROWSER_RULES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"\bedg(?:e|ios|a)?/(?P<v>[\w.]+)", _I), "Edge"),
    (re.compile(r"\bopr/(?P<v>[\w.]+)", _I), "Opera"),
    (re.compile(r"samsungbrowser/(?P<v>[\w.]+)", _I), "Samsung Internet"),
    (re.compile(r"(?:mobile|tablet);.*firefox/(?P<v>[\w.-]+)", _I), "Mobile Firefox"),
    (re.compile(r"\bcrios/(?P<v>[\w.]+)", _I), "Chrome"),
    (re.compile(r"\bfxios/(?P<v>[\w.-]+)", _I), "Firefox"),
    (re.compile(r" wv\).+chrome/(?P<v>[\w.]+)", _I), "Chrome WebView"),
    (re.compile(r"chrome/(?P<v>[\w.]+) mobile", _I), "Mobile Chrome"),
    (re.compile(r"(?P<name>chrome|chromium)/v?(?P<v>[\w.]+)", _I), None),
    (re.compile(r"version/(?P<v>[\w.,]+) .*mobile/\w+ safari", _I), "Mobile Safari"),
    (re.compile(r"version/(?P<v>[\w.,]+) .*safari", _I), "Safari"),
    (re.compile(r"(?P<name>firefox)/(?P<v>[\w.-]+)", _I), None),
    (re.compile(r"trident.+rv[: ](?P<v>[\w.]{1,9})\b.+like gecko", _I), "IE"),
    (re.compile(r"(?:ms|\()ie (?P<v>[\w.]+)", _I), "IE"),
)  # fmt: skip


@functools.lru_cache(maxsize=256)
def parse_user_agent(user_agent: str | None) -> tuple[str | None, str | None]:
    """``(os, browser)`` as Rocket.Chat writes them from the visitor's ``userAgent`` with
    ua-parser-js: ``"<name> <version>"`` each, ``None`` (absent) when the name is unknown, and
    the literal ``"<name> undefined"`` when the version is, as JavaScript's template string
    writes it. A best-effort parser for the common systems and browsers, not all of ua-parser-js.

    >>> parse_user_agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    ...                  "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
    ('Mac OS 10.15.7', 'Chrome 131.0.0.0')
    >>> parse_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    ...                  "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
    ('iOS 17.5', 'Mobile Safari 17.5')
    >>> parse_user_agent("")
    (None, None)
    """
    if not user_agent:
        return None, None
    return _match(_OS_RULES, user_agent, os_rules=True), _match(_BROWSER_RULES, user_agent)


def _match(
    rules: tuple[tuple[re.Pattern[str], str | None], ...], text: str, *, os_rules: bool = False
) -> str | None:
    for pattern, fixed_name in rules:
        found = pattern.search(text)
        if found is None:
            continue
        name = fixed_name or found.group("name")
        version = found.group("v") or None
        if version is not None and os_rules:
            if name in ("iOS", "Mac OS"):  # 17_5 reads 17.5 there, and only there
                version = version.replace("_", ".")
            if name == "Windows":
                version = _WINDOWS_VERSIONS.get(version, version)
        return f"{name} {version if version else 'undefined'}"
    return None


# -- JavaScript's ways, and dates ---------------------------------------------------------------


def _truthy(value: Any) -> bool:
    """JavaScript truthiness: ``{}`` and ``[]`` are true, ``""``, ``0`` and ``null`` false."""
    if isinstance(value, Mapping | list | tuple):
        return True
    return bool(value)


def _non_empty(value: Any) -> bool:
    """``value && value.length > 0``."""
    return _truthy(value) and hasattr(value, "__len__") and len(value) > 0


def _js_json(value: Any) -> str:
    """``JSON.stringify``: no spaces, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _put(target: dict[str, Any], key: str, value: Any, *, present: bool) -> None:
    if present:
        target[key] = value


def _copy(
    target: dict[str, Any],
    key: str,
    source: Mapping[str, Any],
    source_key: str,
    *,
    date: bool = False,
) -> None:
    """``target[key] = source[source_key]`` unless undefined (absent); ``None`` stays ``null``."""
    if source_key in source:
        value = source[source_key]
        target[key] = _date(value) if date else value


_DATED_KEYS = {"closedAt"}


def _dated(key: str, value: Any) -> Any:
    if key in _DATED_KEYS:
        return _date(value)
    if key in ("servedBy", "oldServedBy") and isinstance(value, Mapping):
        return {k: _date(v) if k == "ts" else v for k, v in value.items()}
    return value


def _date(value: Any) -> Any:
    """A date in Rocket.Chat's form (``2025-01-01T10:00:00.000Z``): a ``datetime`` or an ISO
    string with a time zone; anything else is left as it is (the contract check reports it)."""
    if isinstance(value, datetime):
        return format_date(value)
    if isinstance(value, str):
        if _RC_DATE.fullmatch(value):  # already in Rocket.Chat's form: as stored, as REST answers
            return value
        try:
            return format_date(_parse(value))
        except ValueError:
            return value
    return value


_RC_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"a date without a time zone: {value!r}")
    return parsed


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return _parse(value)
    raise ValueError(f"not a date: {value!r}")
