"""A local fake of the Rocket.Chat REST endpoints omnihook calls, for tests (yours and ours).

Built like the CRM fakes: it registers its endpoints on a pytest-httpserver ``HTTPServer`` and
answers as Rocket.Chat does (bodies, status codes, headers, filters, paging), keeping its state as
plain data you may read and change: rooms, visitors, users, messages, settings, permissions.
Switches inject what is hard to get from a real workspace on demand: a missing permission, the
rate limiter, an outage, a room deleted in between::

    def test_reconcile(httpserver):
        rocketchat = FakeRocketChat(httpserver)            # a bot: rocketchat.user_id / .auth_token
        chat = Simulation(seed=1).chat(0)
        chat.payloads()
        rocketchat.add_records(chat.records())             # what Rocket.Chat holds for the chat
        rocketchat.revoke(rocketchat.user_id, "view-livechat-rooms")   # 403 on livechat/rooms
        rocketchat.limit_rate(calls=10, interval_ms=60_000)            # 429 with X-RateLimit-*
        ...

``play(chats, url, rocketchat=fake)`` keeps the fake up to date with every simulated chat.

Endpoints (all ``/api/v1``; sources and shapes in ``docs/reference/rocketchat-rest-api.md``):

- ``GET livechat/rooms``: ``createdAt``/``closedAt`` JSON ``{start, end}`` (inclusive),
  ``open`` (``true``: open, served, not on hold; ``false``: closed), ``queued``, ``onhold``,
  ``agents[]``, ``departmentId``, ``tags[]``, ``roomName``, ``customFields``, ``sort`` (default
  ``{"ts": -1}``), ``offset``/``count`` (default 50, at most 100, 0 for all); unknown parameters
  refused; ``{rooms, count, offset, total, success}``, each room with ``department`` when known.
- ``GET livechat/:rid/messages``: chat messages, the closing message and hidden edit copies, no
  other system message; ``sort`` (default ``{"ts": -1}``), ``offset``/``count`` (``count``
  echoes the page size asked), ``searchTerm``; ``{messages, offset, count, total, success}``.
- ``GET chat.syncMessages?roomId=&lastUpdate=``: every visible message updated since, system
  messages included, newest first, and the deletions: ``{result: {updated, deleted}, success}``.
- ``GET livechat/visitors.info?visitorId=``, ``GET livechat/visitors.pagesVisited/:roomId``,
  ``GET users.info?userId=`` (or ``username``; emails and every declared custom field with
  ``view-full-other-user-info``, else public custom fields only), ``GET settings/:_id``.
- ``POST chat.sendMessage``: stores the message (``_id`` kept when given; a used ``_id`` is
  refused with MongoDB's E11000 error, as Rocket.Chat answers).

Authentication by ``X-User-Id``/``X-Auth-Token`` (401 otherwise), then the rate limiter when
switched on (per route; users with ``api-bypass-rate-limit`` skip it), then the permission each
endpoint needs: a 403 body is Rocket.Chat's, which never names the permission; :attr:`denied`
records which one was missing. Bodies are those of Rocket.Chat 6.x/7.x; ``rocketchat_8=True``
answers 401 and 403 as 8.0 does.

Requires ``pytest-httpserver`` (``pip install omnihook-sender[testing]``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from omnihook.contracts import format_date
from omnihook.contracts.building import (
    CLOSING_MESSAGE_TYPE,
    NAVIGATION_MESSAGE_TYPE,
    BuildSettings,
    RoomRecords,
)

try:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response
except ImportError as exc:  # pragma: no cover - only without the testing extra
    raise ImportError(
        "omnihook.sender.fake_rocketchat needs pytest-httpserver: pip install 'omnihook-sender[testing]'"
    ) from exc

__all__ = ["BOT_PERMISSIONS", "DEFAULT_SETTINGS", "FakeRocketChat"]

BOT_PERMISSIONS: frozenset[str] = frozenset(
    {"view-livechat-rooms", "view-l-room", "view-full-other-user-info", "view-privileged-setting"}
)
"""What omnihook's bot needs to reconcile (``api-bypass-rate-limit`` is recommended too; it is
left out here so that :meth:`FakeRocketChat.limit_rate` applies to the bot)."""

_SWITCHES = ("start", "close", "chat_taken", "chat_queued", "forward", "offline_msg",
             "visitor_message", "agent_message", "capture")  # fmt: skip
DEFAULT_SETTINGS: dict[str, Any] = {
    "Livechat_webhookUrl": "",
    "Livechat_secret_token": "",
    "Livechat_http_timeout": 5000,
    **{f"Livechat_webhook_on_{switch}": True for switch in _SWITCHES},
    "Livechat_Visitor_navigation_as_a_message": False,
    "Send_visitor_navigation_history_livechat_webhook_request": False,
    "Livechat_lead_email_regex": r"\b[A-Z0-9._%+-]+@(?:[A-Z0-9-]+\.)+[A-Z]{2,4}\b",
    "Livechat_lead_phone_regex": r"((?:\([0-9]{1,3}\)|[0-9]{2})[ \-]*?[0-9]{4,5}(?:[\-\s\_]{1,2})?[0-9]{4}(?=(?:[^0-9]|$))|[0-9]{4}[ \-]*?[0-9]{4}(?=(?:[^0-9]|$)))",
    "Livechat_OfflineMessageToChannel_enabled": False,
    "Livechat_OfflineMessageToChannel_channel_name": "",
    "Accounts_CustomFields": "",
    "Site_Url": "https://chat.example.com",
    "UI_Use_Real_Name": False,
}
"""A workspace whose admin switched every webhook on (Rocket.Chat's own defaults are off)."""

_ROOM_PARAMS = {"agents", "departmentId", "open", "tags", "roomName", "onhold", "queued", "units",
                "createdAt", "closedAt", "customFields", "offset", "count", "sort", "fields", "query"}  # fmt: skip
_TRUE = ("t", "true", "1")
_LOGIN = "You must be logged in to do this."
_USER_FIELDS = ("name", "username", "nickname", "status", "utcOffset", "type", "active", "bio", "reason",
                "statusText", "avatarETag", "extension", "federated", "statusLivechat", "freeSwitchExtension")  # fmt: skip
_FULL_USER_FIELDS = ("emails", "phone", "statusConnection", "createdAt", "lastLogin",
                     "requirePasswordChange", "requirePasswordChangeReason", "roles", "importIds")  # fmt: skip


class _Refusal(Exception):
    """An answer other than 200, raised from deep inside a handler."""

    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        super().__init__(body.get("error"))
        self.body, self.status = body, status


class FakeRocketChat:
    """Rocket.Chat's REST API for the endpoints omnihook reads and writes (see the module)."""

    def __init__(
        self,
        server: HTTPServer,
        *,
        user_id: str = "omnihook-bot-id",
        auth_token: str = "omnihook-bot-token",
        username: str = "omnihook.bot",
        permissions: Iterable[str] = BOT_PERMISSIONS,
        clock: Callable[[], float] = time.time,
        rocketchat_8: bool = False,
    ) -> None:
        self.server = server
        self.user_id, self.auth_token = user_id, auth_token
        self.clock = clock
        self.rocketchat_8 = rocketchat_8
        self.rooms: dict[str, dict[str, Any]] = {}
        self.visitors: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        """Every stored message of every room, by ``_id``, in the order stored."""
        self.trash: list[dict[str, Any]] = []
        """Deleted messages: ``{_id, rid, _deletedAt}``."""
        self.departments: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.hidden_settings: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.permissions: dict[str, set[str]] = {}
        self.denied: list[tuple[str, str]] = []
        """``(path, permission)`` of every request refused for a missing permission."""
        self.sent: list[dict[str, Any]] = []
        """Every message posted through ``chat.sendMessage``."""
        self._rate: tuple[int, int] | None = None
        self._windows: dict[str, tuple[float, int]] = {}
        self._outages: list[int] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.add_user({"_id": user_id, "username": username, "name": "omnihook", "type": "bot",
                       "status": "online", "active": True, "roles": ["bot"]},
                      token=auth_token, permissions=permissions)  # fmt: skip
        routes: list[tuple[str, str, Callable[[Request, dict[str, Any]], Any]]] = [
            ("GET", r"/api/v1/livechat/rooms", self._rooms),
            ("GET", r"/api/v1/livechat/(?P<rid>[^/]+)/messages", self._room_messages),
            ("GET", r"/api/v1/chat\.syncMessages", self._sync_messages),
            ("GET", r"/api/v1/livechat/visitors\.info", self._visitor_info),
            ("GET", r"/api/v1/livechat/visitors\.pagesVisited/(?P<rid>[^/]+)", self._pages_visited),
            ("GET", r"/api/v1/users\.info", self._user_info),
            ("GET", r"/api/v1/settings/(?P<sid>[^/]+)", self._setting),
            ("POST", r"/api/v1/chat\.sendMessage", self._send_message),
        ]
        for method, pattern, handler in routes:
            compiled = re.compile(f"^{pattern}$")
            server.expect_request(compiled, method=method).respond_with_handler(
                self._endpoint(method, compiled, handler)
            )

    @property
    def url(self) -> str:
        """The workspace URL (what ``RocketChatApi`` takes)."""
        return self.server.url_for("").rstrip("/")

    # -- state ---------------------------------------------------------------------------------

    def add_user(
        self,
        user: Mapping[str, Any],
        *,
        token: str | None = None,
        permissions: Iterable[str] = (),
    ) -> None:
        """A user document (an agent, a bot); with ``token``, the user may call the API."""
        with self._lock:
            record = _plain(user)
            self.users[record["_id"]] = record
            if token is not None:
                self.tokens[record["_id"]] = token
            self.permissions.setdefault(record["_id"], set()).update(permissions)

    def add_visitor(self, visitor: Mapping[str, Any]) -> None:
        with self._lock:
            record = _plain(visitor)
            self.visitors[record["_id"]] = record

    def add_room(self, room: Mapping[str, Any]) -> None:
        with self._lock:
            record = _plain(room)
            self.rooms[record["_id"]] = record

    def add_messages(self, messages: Iterable[Mapping[str, Any]]) -> None:
        """Stored messages (any room; an ``_id`` already stored is replaced)."""
        with self._lock:
            for message in messages:
                record = _plain(message)
                self.messages[record["_id"]] = record

    def add_department(self, department_id: str, name: str) -> None:
        with self._lock:
            self.departments[department_id] = {"_id": department_id, "name": name}

    def add_records(self, records: RoomRecords) -> None:
        """Everything Rocket.Chat holds about one room (as ``ChatBuilder.records()`` gives it):
        the room, its visitor and agent users are upserted, the room's messages replaced."""
        with self._lock:
            self.add_room(records.room)
            self.add_visitor(records.visitor)
            for user in records.users:
                if user.get("_id") != self.user_id:
                    self.users[str(user["_id"])] = _plain(user)
            rid = records.room_id
            for mid in [mid for mid, m in self.messages.items() if m.get("rid") == rid]:
                del self.messages[mid]
            self.add_messages(records.messages)

    def apply(self, settings: BuildSettings) -> None:
        """Set the workspace settings that give these build settings (the agent custom fields
        marked ``sendToIntegrations``, both navigation settings, ``Site_Url``)."""
        with self._lock:
            self.settings["Livechat_Visitor_navigation_as_a_message"] = (
                settings.navigation_in_history
            )
            self.settings["Send_visitor_navigation_history_livechat_webhook_request"] = (
                settings.navigation_in_history
            )
            self.settings["Accounts_CustomFields"] = json.dumps({key: {"type": "text", "required": False,
                                                                       "sendToIntegrations": True}
                                                                 for key in sorted(settings.agent_custom_fields)})  # fmt: skip
            if settings.site_url is not None:
                self.settings["Site_Url"] = settings.site_url

    def delete_room(self, room_id: str) -> None:
        """The room and its messages are gone (an admin deleted the room)."""
        with self._lock:
            self.rooms.pop(room_id, None)
            for mid in [mid for mid, m in self.messages.items() if m.get("rid") == room_id]:
                del self.messages[mid]

    def delete_message(self, message_id: str) -> None:
        """The message is deleted without a trace in the room (``chat.syncMessages`` lists it
        under ``deleted``)."""
        with self._lock:
            message = self.messages.pop(message_id)
            self.trash.append(
                {"_id": message_id, "rid": message.get("rid"), "_deletedAt": self._now()}
            )

    def room_messages(self, room_id: str) -> list[dict[str, Any]]:
        """Every stored message of a room (hidden copies and system messages included)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self.messages.values() if m.get("rid") == room_id]

    # -- switches ------------------------------------------------------------------------------

    def grant(self, user_id: str, *permissions: str) -> None:
        with self._lock:
            self.permissions.setdefault(user_id, set()).update(permissions)

    def revoke(self, user_id: str, *permissions: str) -> None:
        with self._lock:
            self.permissions.setdefault(user_id, set()).difference_update(permissions)

    def limit_rate(self, calls: int | None = 10, interval_ms: int = 60_000) -> None:
        """Switch Rocket.Chat's rate limiter on (its defaults: 10 calls per 60 s per route), or
        off with ``calls=None``. Every answer of a limited route carries ``X-RateLimit-Limit``,
        ``-Remaining`` and ``-Reset`` (epoch milliseconds); over the limit, 429."""
        with self._lock:
            self._rate = (calls, interval_ms) if calls else None
            self._windows.clear()

    def fail(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (a proxy in front of a Rocket.Chat
        that is down or restarting)."""
        with self._lock:
            self._outages += [status] * times

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The requests this server received, optionally of one method and/or path prefix."""
        return [r for r, _ in self.server.log
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))]  # fmt: skip

    # -- the pipeline of every request ---------------------------------------------------------

    def _endpoint(
        self,
        method: str,
        pattern: re.Pattern[str],
        handler: Callable[[Request, dict[str, Any]], Any],
    ) -> Callable[[Request], Response]:
        route = f"{method} {pattern.pattern}"

        def respond(request: Request) -> Response:
            with self._lock:
                if self._outages:
                    status = self._outages.pop(0)
                    return _json({"success": False, "error": "Service Unavailable"}, status)
                user = self._authenticated(request)
                if user is None:
                    body: dict[str, Any] = {"success": False, "error": _LOGIN}
                    if not self.rocketchat_8:
                        body |= {"status": "error", "message": _LOGIN}
                    return _json(body, 401)
                headers: dict[str, str] = {}
                refused = self._rate_limited(route, user, headers)
                if refused is not None:
                    return _json(refused, 429, headers)
                match = pattern.match(request.path)
                assert match is not None
                try:
                    answer = handler(request, {"user": user, **match.groupdict()})
                except _Refusal as refusal:
                    return _json(refusal.body, refusal.status, headers)
                return _json({**answer, "success": True}, 200, headers)

        return respond

    def _authenticated(self, request: Request) -> dict[str, Any] | None:
        user_id = request.headers.get("X-User-Id")
        token = request.headers.get("X-Auth-Token")
        if not user_id or not token or self.tokens.get(user_id) != token:
            return None
        return self.users.get(user_id)

    def _rate_limited(self, route: str, user: dict[str, Any], headers: dict[str, str]) -> dict[str, Any] | None:  # fmt: skip
        if self._rate is None or self._can(user, "api-bypass-rate-limit"):
            return None
        calls, interval = self._rate
        now = self.clock() * 1000
        start, count = self._windows.get(route, (now, 0))
        if now - start >= interval:
            start, count = now, 0
        count += 1
        self._windows[route] = (start, count)
        reset_in = max(start + interval - now, 0)
        headers |= {"X-RateLimit-Limit": str(calls), "X-RateLimit-Remaining": str(max(calls - count, 0)),
                    "X-RateLimit-Reset": str(int(now + reset_in))}  # fmt: skip
        if count <= calls:
            return None
        seconds = math.ceil(reset_in / 1000)
        return {"success": False, "error": "Error, too many requests. Please slow down. You must wait "
                f"{seconds} seconds before trying this endpoint again. [error-too-many-requests]"}  # fmt: skip

    def _can(self, user: Mapping[str, Any], permission: str) -> bool:
        return permission in self.permissions.get(str(user.get("_id")), set())

    def _require(self, request: Request, user: Mapping[str, Any], permission: str) -> None:
        """``permissionsRequired``: 403 with Rocket.Chat's body (which names no permission)."""
        if not self._can(user, permission):
            self.denied.append((request.path, permission))
            code = "error-forbidden" if self.rocketchat_8 else "error-unauthorized"
            raise _Refusal({"success": False, "error": "User does not have the permissions required for "
                            f"this action [{code}]"}, 403)  # fmt: skip

    def _forbidden(self, request: Request, permission: str) -> _Refusal:
        """``API.v1.forbidden()`` from inside a handler."""
        self.denied.append((request.path, permission))
        return _Refusal(
            {"success": False, "error": "forbidden" if self.rocketchat_8 else "unauthorized"}, 403
        )

    def _can_access(self, user: Mapping[str, Any], room: Mapping[str, Any]) -> bool:
        """canAccessRoom for an Omnichannel room: ``view-livechat-rooms``, or serving it."""
        served_by = room.get("servedBy")
        serving = isinstance(served_by, Mapping) and served_by.get("_id") == user.get("_id")
        return self._can(user, "view-livechat-rooms") or serving

    def _now(self) -> str:
        return format_date(datetime.fromtimestamp(self.clock(), UTC))

    # -- GET livechat/rooms --------------------------------------------------------------------

    def _rooms(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        args = request.args
        unknown = {key.removesuffix("[]") for key in args} - _ROOM_PARAMS
        if unknown:
            raise _invalid_params("must NOT have additional properties")
        offset, count = self._pagination(args)
        sort = _sort(args.get("sort"), {"ts": -1})
        created = _date_range("createdAt", args.get("createdAt"))
        closed = _date_range("closedAt", args.get("closedAt"))
        user = ctx["user"]
        agents = _list(args, "agents")
        if not self._can(user, "view-livechat-rooms") and not (
            self._can(user, "view-l-room") and agents == [user["_id"]]
        ):
            raise self._forbidden(request, "view-livechat-rooms")
        custom = args.get("customFields")
        custom_fields: dict[str, Any] = {}
        if custom:
            try:
                custom_fields = json.loads(custom)
            except ValueError:
                custom_fields = []  # type: ignore[assignment]
            if not isinstance(custom_fields, dict):
                raise _Refusal(
                    {
                        "success": False,
                        "error": 'The "customFields" query parameter must be a valid JSON.',
                    }
                )
        open_ = args.get("open")
        departments, tags = _list(args, "departmentId"), _list(args, "tags")
        room_name = args.get("roomName")
        found = []
        for room in self.rooms.values():
            if room.get("t") != "l":
                continue
            on_hold = room.get("onHold") is True
            if open_ == "true" and not (room.get("open") and not on_hold and room.get("servedBy")):
                continue
            if open_ == "false" and (room.get("open") or on_hold):
                continue
            if args.get("onhold") in _TRUE and not on_hold:
                continue
            if args.get("queued") in _TRUE and not (
                room.get("open") and not on_hold and not room.get("servedBy")
            ):
                continue
            if created and not _within(room.get("ts"), created):
                continue
            if closed and not _within(room.get("closedAt"), closed):
                continue
            if agents and (room.get("servedBy") or {}).get("_id") not in agents:
                continue
            if departments and room.get("departmentId") not in departments:
                continue
            if tags and not set(tags) & set(room.get("tags") or []):
                continue
            if room_name and not _name_matches(room_name, str(room.get("fname") or "")):
                continue
            data = room.get("livechatData") or {}
            if any(
                not re.search(re.escape(str(v)), str(data.get(k, "")), re.I)
                for k, v in custom_fields.items()
            ):
                continue
            found.append(room)
        ordered = _sorted(found, sort)
        page = ordered[offset:] if count == 0 else ordered[offset : offset + count]
        rooms = []
        for room in page:
            answer = copy.deepcopy(room)
            department = self.departments.get(str(room.get("departmentId")))
            if department is not None:
                answer["department"] = dict(department)
            rooms.append(answer)
        return {"rooms": rooms, "count": len(rooms), "offset": offset, "total": len(found)}

    # -- GET livechat/:rid/messages ------------------------------------------------------------

    def _room_messages(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        user = ctx["user"]
        self._require(request, user, "view-l-room")
        offset, count = self._pagination(request.args)
        sort = _sort(request.args.get("sort"), {"ts": -1})
        room = self.rooms.get(ctx["rid"])
        if room is None:
            raise _Refusal({"success": False, "error": "invalid-room"})
        if not self._can_access(user, room):
            raise _Refusal({"success": False, "error": "not-allowed"})
        term = request.args.get("searchTerm")
        # findLivechatClosedMessages: chat messages and the closing one; hidden copies stay in.
        found = [m for m in self.messages.values() if m.get("rid") == room["_id"]
                 and (not m.get("t") or m.get("t") == CLOSING_MESSAGE_TYPE)
                 and (not term or re.search(re.escape(term), str(m.get("msg", "")), re.I))]  # fmt: skip
        ordered = _sorted(found, sort)
        page = ordered[offset:] if count == 0 else ordered[offset : offset + count]
        return {
            "messages": self._normalized(page),
            "offset": offset,
            "count": count,
            "total": len(found),
        }

    # -- GET chat.syncMessages -----------------------------------------------------------------

    def _sync_messages(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        room_id, last_update = request.args.get("roomId"), request.args.get("lastUpdate")
        if not room_id:
            raise _meteor(
                "error-roomId-param-not-provided", 'The required "roomId" query param is missing.'
            )
        if not last_update:
            raise _meteor(
                "error-lastUpdate-param-not-provided",
                'The required "lastUpdate" query param is missing.',
            )
        since = _instant(last_update)
        if since is None:
            raise _meteor(
                "error-roomId-param-invalid",
                'The "lastUpdate" query parameter must be a valid date.',
            )
        room = self.rooms.get(room_id)
        if room is None or not self._can_access(ctx["user"], room):
            raise _meteor("error-not-allowed", "Not allowed")
        updated = [m for m in self.messages.values() if m.get("rid") == room_id and m.get("_hidden") is not True
                   and (_instant(m.get("_updatedAt")) or since) > since]  # fmt: skip
        deleted = [{"_id": d["_id"], "_deletedAt": d["_deletedAt"]} for d in self.trash
                   if d.get("rid") == room_id and (_instant(d["_deletedAt"]) or since) > since]  # fmt: skip
        return {"result": {"updated": self._normalized(_sorted(updated, {"ts": -1})),
                           "deleted": _sorted(deleted, {"_deletedAt": -1})}}  # fmt: skip

    # -- visitors ------------------------------------------------------------------------------

    def _visitor_info(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        visitor_id = request.args.get("visitorId")
        if not visitor_id:
            raise _invalid_params("must have required property 'visitorId'")
        self._require(request, ctx["user"], "view-l-room")
        visitor = self.visitors.get(visitor_id)
        if visitor is None:
            raise _Refusal({"success": False, "error": "visitor-not-found"})
        return {"visitor": copy.deepcopy(visitor)}

    def _pages_visited(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        self._require(request, ctx["user"], "view-l-room")
        offset, count = self._pagination(request.args)
        sort = _sort(request.args.get("sort"), {"ts": -1})
        room = self.rooms.get(ctx["rid"])
        if room is None:
            raise _Refusal({"success": False, "error": "invalid-room"})
        found = [m for m in self.messages.values()
                 if m.get("rid") == room["_id"] and m.get("t") == NAVIGATION_MESSAGE_TYPE]  # fmt: skip
        ordered = _sorted(found, sort)
        page = ordered[offset:] if count == 0 else ordered[offset : offset + count]
        return {
            "pages": copy.deepcopy(page),
            "count": len(page),
            "offset": offset,
            "total": len(found),
        }

    # -- users.info, settings ------------------------------------------------------------------

    def _user_info(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        caller = ctx["user"]
        user_id, username = request.args.get("userId"), request.args.get("username")
        if not user_id and not username:
            raise _invalid_params("must have required property 'userId'\n must have required property "
                                  "'username'\n must have required property 'importId'\n must match a schema in anyOf")  # fmt: skip
        user = self.users.get(user_id) if user_id else next(
            (u for u in self.users.values() if u.get("username") == username), None)  # fmt: skip
        if user is None:
            raise _Refusal({"success": False, "error": "User not found."})
        myself = user["_id"] == caller["_id"]
        full = myself or self._can(caller, "view-full-other-user-info")
        answer: dict[str, Any] = {"_id": user["_id"]}
        for key in (*_USER_FIELDS, *(_FULL_USER_FIELDS if full else ())):
            if key in user:
                answer[key] = copy.deepcopy(user[key])
        declared = self._declared_custom_fields(public_only=not full)
        custom = {k: v for k, v in (user.get("customFields") or {}).items() if k in declared}
        if custom:
            answer["customFields"] = custom
        answer["canViewAllInfo"] = full
        return {"user": answer}

    def _declared_custom_fields(self, *, public_only: bool) -> set[str]:
        try:
            declared = json.loads(
                str(self.settings.get("Accounts_CustomFields") or "").strip() or "{}"
            )
        except ValueError:
            return set()
        if not isinstance(declared, dict):
            return set()
        return {
            k
            for k, spec in declared.items()
            if not public_only or (isinstance(spec, dict) and spec.get("public"))
        }

    def _setting(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        self._require(request, ctx["user"], "view-privileged-setting")
        setting_id = ctx["sid"]
        if setting_id not in self.settings or setting_id in self.hidden_settings:
            raise _Refusal({"success": False})
        return {"_id": setting_id, "value": copy.deepcopy(self.settings[setting_id])}

    # -- POST chat.sendMessage -----------------------------------------------------------------

    def _send_message(self, request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
        body = request.get_json(silent=True) or {}
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise _meteor("error-invalid-params", 'The "message" parameter must be provided.')
        if not message.get("rid"):
            raise _Refusal(
                {"success": False, "error": "The 'rid' property on the message object is missing."}
            )
        room = self.rooms.get(str(message["rid"]))
        if room is None:
            raise _Refusal({"success": False, "error": "error-invalid-room"})
        message_id = str(message.get("_id") or f"fakeMsg{next(self._ids):010d}")
        if message_id in self.messages:
            raise _Refusal({"success": False, "error": "E11000 duplicate key error collection: "
                            f'rocketchat.rocketchat_message index: _id_ dup key: {{ _id: "{message_id}" }}'})  # fmt: skip
        user = ctx["user"]
        now = self._now()
        stored = {"_id": message_id, "rid": room["_id"], "msg": str(message.get("msg") or ""), "ts": now,
                  "u": {"_id": user["_id"], "username": user.get("username"), "name": user.get("name")},
                  "unread": True, "mentions": [], "channels": [], "_updatedAt": now}  # fmt: skip
        for key in ("blocks", "attachments", "alias", "emoji", "avatar", "tmid", "customFields"):
            if key in message:
                stored[key] = message[key]
        self.messages[message_id] = stored
        self.sent.append(copy.deepcopy(stored))
        room["lm"], room["_updatedAt"] = now, now
        room["msgs"] = int(room.get("msgs") or 0) + 1
        return {"message": copy.deepcopy(stored)}

    # -- helpers -------------------------------------------------------------------------------

    def _pagination(self, args: Mapping[str, str]) -> tuple[int, int]:
        """getPaginationItems: default 50, at most 100, 0 for everything."""
        try:
            offset = int(args.get("offset") or 0)
            count = int(args["count"] or 0) if "count" in args else 50
        except ValueError:
            raise _invalid_params("must be integer") from None
        return offset, min(count, 100)

    def _normalized(self, messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """normalizeMessagesForUser: with UI_Use_Real_Name, ``u.name`` is the user's name (a
        visitor, not being a user, gets their username)."""
        answer = [copy.deepcopy(dict(m)) for m in messages]
        if self.settings.get("UI_Use_Real_Name"):
            for message in answer:
                author = message.get("u")
                if isinstance(author, dict):
                    user = self.users.get(str(author.get("_id")))
                    author["name"] = user.get("name") if user else author.get("username")
        return answer


# -- Rocket.Chat's parameters and Mongo's ways ---------------------------------------------------


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def _plain(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy as JSON holds it (datetimes in Rocket.Chat's form)."""
    plain: dict[str, Any] = json.loads(json.dumps(document, default=_date_default))
    return plain


def _date_default(value: Any) -> str:
    if isinstance(value, datetime):
        return format_date(value)
    raise TypeError(f"not JSON: {value!r}")


def _invalid_params(text: str) -> _Refusal:
    return _Refusal(
        {"success": False, "error": f"{text} [invalid-params]", "errorType": "invalid-params"}
    )


def _meteor(error: str, reason: str) -> _Refusal:
    """A ``Meteor.Error(error, reason)`` thrown in a handler: 400, ``"reason [error]"``."""
    return _Refusal({"success": False, "error": f"{reason} [{error}]", "errorType": error})


def _instant(value: Any) -> datetime | None:
    """``Date.parse``, roughly: an ISO date (no zone means UTC), else ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date_range(name: str, value: str | None) -> dict[str, datetime] | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:  # JSON.parse's SyntaxError, answered as a failure
        raise _Refusal(
            {"success": False, "error": f"Unexpected token in JSON at position {exc.pos}"}
        ) from None
    window: dict[str, datetime] = {}
    for key in ("start", "end"):
        raw = parsed.get(key) if isinstance(parsed, dict) else None
        if raw:
            instant = _instant(raw)
            if instant is None:
                raise _Refusal(
                    {
                        "success": False,
                        "error": f'The "{name}.{key}" query parameter must be a valid date.',
                    }
                )
            window[key] = instant
    return window


def _within(value: Any, window: Mapping[str, datetime]) -> bool:
    instant = _instant(value)
    if instant is None:
        return False
    return ("start" not in window or instant >= window["start"]) and (
        "end" not in window or instant <= window["end"]
    )


def _list(args: Any, name: str) -> list[str]:
    return [*args.getlist(name), *args.getlist(f"{name}[]")]


def _name_matches(query: str, fname: str) -> bool:
    if len(query) > 1 and query.startswith('"') and query.endswith('"'):
        return fname == query[1:-1]
    return re.search(re.escape(query), fname, re.I) is not None


def _sort(value: str | None, default: dict[str, int]) -> dict[str, int]:
    """parseJsonQuery's ``sort``: a JSON object of 1 or -1."""
    if not value:
        return default
    try:
        sort = json.loads(value)
    except ValueError:
        sort = None
    if not isinstance(sort, dict) or any(v not in (1, -1) for v in sort.values()):
        raise _meteor("error-invalid-sort", f'Invalid sort parameter provided: "{value}"')
    return sort


def _sorted(documents: list[dict[str, Any]], sort: Mapping[str, int]) -> list[dict[str, Any]]:
    """MongoDB's sort: missing fields first when ascending; dotted paths; stable."""
    ordered = list(documents)
    for key, direction in reversed(list(sort.items())):
        ordered.sort(key=lambda d: _sort_key(_path(d, key)), reverse=direction == -1)
    return ordered


def _path(document: Mapping[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _sort_key(value: Any) -> tuple[int, Any]:
    """Mongo's order of types: null, numbers, strings, objects, booleans, dates."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (4, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        instant = _instant(value) if len(value) >= 10 and value[4:5] == "-" else None
        return (5, instant.timestamp()) if instant else (2, value)  # dates are ISO strings here
    return (3, json.dumps(value, sort_keys=True))
