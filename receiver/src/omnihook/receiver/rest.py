"""Rocket.Chat's REST API as a bot user: replies into a chat, and what reconciling reads.

Every call carries ``X-User-Id`` and ``X-Auth-Token`` (a bot's personal access token).

Replies go through ``POST /api/v1/chat.sendMessage``. Each carries a message ``_id`` derived from
the event, the handler and the reply's number, so a handler that runs again after a failure does
not post its replies twice: Rocket.Chat refuses the same ``_id``, and that refusal counts as
"already sent".

Reconcile reads the Omnichannel rooms of a time window, their messages, visitors and agents, and
the webhook settings (see ``docs/reference/rocketchat-rest-api.md`` for the endpoints and where
Rocket.Chat's source defines them). Failures say what to do:

- 401: the user id or token is wrong (:class:`RocketChatRefused`);
- 403: the bot lacks a permission: the error names it (:class:`RocketChatRefused`);
- 429: Rocket.Chat's rate limiter; the call waits until ``X-RateLimit-Reset`` and tries again
  (grant the bot ``api-bypass-rate-limit``: the default limit is 10 calls a minute per endpoint);
- unreachable, 5xx: :class:`RocketChatUnavailable` after a few tries (report, try later: never
  guessed around).

>>> api = RocketChatApi("https://chat.example.com", user_id, token)          # doctest: +SKIP
>>> rooms = await api.livechat_rooms(created={"start": "2026-01-01T00:00:00.000Z"})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from omnihook.store import backoff_delay, register_secret

from .router import PermanentError

__all__ = [
    "PERMISSIONS",
    "ReplyError",
    "ReplyRefused",
    "RocketChatApi",
    "RocketChatError",
    "RocketChatRefused",
    "RocketChatUnavailable",
]

PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("livechat/rooms", "view-livechat-rooms"),
    ("settings/", "view-privileged-setting"),
    ("users.info", "view-full-other-user-info"),
    ("livechat/", "view-l-room"),  # a room's messages, its visitor, the pages visited
    ("chat.syncMessages", "view-l-room"),
)
"""The permission each endpoint needs (the first prefix that matches), named in a 403's error."""

_PAGE = 100  # Rocket.Chat caps count at 100
_MAX_PAGES = 10_000
_MAX_ANSWER_BYTES = 64 * 1024 * 1024
_MAX_RATE_WAIT = 120.0


class ReplyError(Exception):
    """A reply could not be posted (after retries for what may pass)."""


class ReplyRefused(ReplyError, PermanentError):
    """Rocket.Chat refused the reply itself (credentials, room, permission): fix, then replay."""


class RocketChatError(Exception):
    """A read from Rocket.Chat's REST API failed."""


class RocketChatRefused(RocketChatError):
    """Rocket.Chat refused the bot: wrong credentials, or a permission it lacks (named), or
    the request itself (``status`` 400: a parameter this version does not know)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RocketChatUnavailable(RocketChatError):
    """Rocket.Chat cannot be reached, or failed on its side: try again later."""


class RocketChatApi:
    """Rocket.Chat's REST API as the user ``user_id`` (a bot or an agent)."""

    def __init__(
        self,
        url: str,
        user_id: str,
        auth_token: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the Rocket.Chat URL must be http:// or https://, got {url!r}")
        if not user_id or not auth_token:
            raise ValueError(
                "the Rocket.Chat API needs a user id and auth token (a bot's personal access token)"
            )
        register_secret(auth_token)  # never in a recorded error or a log line
        self.url = url.rstrip("/")
        self._headers = {
            "X-User-Id": user_id,
            "X-Auth-Token": auth_token,
            "Content-Type": "application/json",
        }
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._delay = delay
        self._sleep = sleep
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    # -- replies -------------------------------------------------------------------------------

    async def send_message(
        self, room_id: str, text: str, message_id: str | None = None
    ) -> dict[str, Any]:
        """Post ``text`` into ``room_id``; returns Rocket.Chat's message (``{}`` when a message with
        this ``message_id`` was already posted)."""
        message: dict[str, Any] = {"rid": room_id, "msg": text}
        if message_id:
            message["_id"] = message_id
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._http().post(
                    f"{self.url}/api/v1/chat.sendMessage",
                    json={"message": message},
                    headers=self._headers,
                )
            except httpx.HTTPError as exc:
                error: str = f"cannot reach {self.url}: {exc}"
            else:
                answer = _json(response)
                if response.status_code == 200 and answer.get("success") is not False:
                    return dict(answer.get("message") or {})
                reason = _reason(answer, response.text)
                if message_id and _already_exists(reason):
                    return {}
                if response.status_code == 401:
                    raise ReplyRefused(
                        f"Rocket.Chat refused the reply user's credentials (X-User-Id/X-Auth-Token): {reason}"
                    )
                if response.status_code in (400, 403, 404):
                    raise ReplyRefused(f"Rocket.Chat refused the reply in room {room_id}: {reason}")
                error = f"Rocket.Chat answered {response.status_code}: {reason}"
            if attempt == self._attempts:
                raise ReplyError(f"{error} (after {attempt} attempts)")
            await self._sleep(backoff_delay(self._delay, 2.0, attempt))
        raise AssertionError("unreachable")

    # -- what reconciling reads ----------------------------------------------------------------

    async def livechat_rooms(
        self,
        *,
        created: Mapping[str, str] | None = None,
        closed: Mapping[str, str] | None = None,
        state: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every Omnichannel room matching the filters, oldest first, all pages.

        ``created``/``closed`` are ``{"start": ISO, "end": ISO}`` (either key may be left out);
        ``state`` is ``"open"`` (served, not on hold), ``"queued"`` or ``"onhold"``.
        """
        params: dict[str, str] = {"sort": json.dumps({"ts": 1})}
        if created:
            params["createdAt"] = json.dumps(dict(created))
        if closed:
            params["closedAt"] = json.dumps(dict(closed))
        if state is not None:
            params[state] = "true"
        return await self._pages("livechat/rooms", params, "rooms")

    async def room_messages(self, room_id: str) -> list[dict[str, Any]]:
        """A livechat room's messages, oldest first, all pages (``livechat/:rid/messages``:
        chat messages, the closing message and hidden edit copies; no other system messages)."""
        params = {"sort": json.dumps({"ts": 1})}
        return await self._pages(f"livechat/{_segment(room_id)}/messages", params, "messages")

    async def system_messages(self, room_id: str) -> list[dict[str, Any]]:
        """Every message of a room, system messages included (takes, transfers), oldest first
        (``chat.syncMessages`` since the epoch)."""
        answer = await self.get(
            "chat.syncMessages", {"roomId": room_id, "lastUpdate": "1970-01-01T00:00:00.000Z"}
        )
        result = answer.get("result") or {}
        updated = result.get("updated") if isinstance(result, dict) else None
        messages = [m for m in updated or [] if isinstance(m, dict)]
        return sorted(messages, key=lambda message: str(message.get("ts", "")))

    async def pages_visited(self, room_id: str) -> list[dict[str, Any]]:
        """The visitor's navigation messages in a room, all pages."""
        path = f"livechat/visitors.pagesVisited/{_segment(room_id)}"
        return await self._pages(path, {}, "pages")

    async def visitor(self, visitor_id: str) -> dict[str, Any] | None:
        """A visitor's record, or ``None`` when Rocket.Chat no longer has it."""
        try:
            answer = await self.get("livechat/visitors.info", {"visitorId": visitor_id})
        except _NotFound:
            return None
        visitor = answer.get("visitor")
        return dict(visitor) if isinstance(visitor, dict) else None

    async def user(self, user_id: str) -> dict[str, Any] | None:
        """A user's record (an agent: name, emails, custom fields), or ``None`` when gone."""
        try:
            answer = await self.get("users.info", {"userId": user_id})
        except _NotFound:
            return None
        user = answer.get("user")
        return dict(user) if isinstance(user, dict) else None

    async def setting(self, setting_id: str) -> Any:
        """A setting's value (needs ``view-privileged-setting`` for the Livechat ones)."""
        answer = await self.get(f"settings/{_segment(setting_id)}", {})
        return answer.get("value")

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /api/v1/{path}``, with the failures of the module's docstring. Waits for the
        rate limiter do not count as attempts (up to 120 s of them per call)."""
        rate_waits = 0.0
        attempt = 0
        while True:
            try:
                status, answer, text, headers = await self._read(path, params)
            except httpx.HTTPError as exc:
                error = f"cannot reach Rocket.Chat at {self.url}: {exc}"
            else:
                if status == 200 and answer is not None and answer.get("success") is not False:
                    return answer
                reason = _reason(answer or {}, text)
                if status == 429:
                    wait = self._rate_wait(headers, reason)
                    rate_waits += wait
                    if rate_waits > _MAX_RATE_WAIT:
                        raise RocketChatUnavailable(
                            f"Rocket.Chat's rate limit on {path} held for over "
                            f"{_MAX_RATE_WAIT:g} s: give the bot the api-bypass-rate-limit "
                            "permission"
                        )
                    await self._sleep(wait)
                    continue
                if status == 401:
                    raise RocketChatRefused(
                        f"Rocket.Chat refused the bot's credentials (X-User-Id/X-Auth-Token): "
                        f"{reason}",
                        status,
                    )
                if status == 403:
                    raise RocketChatRefused(
                        f"Rocket.Chat refused GET {path}: {reason}; give the bot the "
                        f"{_permission(path)} permission",
                        status,
                    )
                if status in (400, 404) and _not_found(reason):
                    raise _NotFound(reason)
                if 400 <= status < 500:
                    raise RocketChatRefused(
                        f"Rocket.Chat refused GET {path}: {status} {reason}", status
                    )
                error = f"Rocket.Chat answered {status} to GET {path}: {reason}"
            attempt += 1
            if attempt >= self._attempts:
                raise RocketChatUnavailable(f"{error} (after {attempt} attempts)")
            await self._sleep(backoff_delay(self._delay, 2.0, attempt))

    async def _read(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[int, dict[str, Any] | None, str, httpx.Headers]:
        """One GET: status, the JSON object (``None`` when the answer is not one, or too big
        or too deep to read), the start of its text, its headers."""
        request = self._http().stream(
            "GET", f"{self.url}/api/v1/{path}", params=dict(params), headers=self._headers
        )
        async with request as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > _MAX_ANSWER_BYTES:
                    return response.status_code, None, "answer over 64 MiB", response.headers
                chunks.append(chunk)
        body = b"".join(chunks)
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested beyond reading
            answer = None
        document = answer if isinstance(answer, dict) else None
        return (
            response.status_code,
            document,
            body[:300].decode("utf-8", "replace"),
            response.headers,
        )

    async def _pages(self, path: str, params: Mapping[str, str], key: str) -> list[dict[str, Any]]:
        """Every item of a paged listing: until ``total`` is reached, a page is short or empty,
        or a page repeats what was read (a server ignoring ``offset``)."""
        found: list[dict[str, Any]] = []
        seen: set[Any] = set()
        offset = 0
        for _ in range(_MAX_PAGES):
            answer = await self.get(path, {**params, "offset": str(offset), "count": str(_PAGE)})
            page = [item for item in answer.get(key) or [] if isinstance(item, dict)]
            ids = [item.get("_id") for item in page]
            if page and all(i in seen for i in ids if i is not None) and any(ids):
                return found  # the same items again: offset is not honoured
            seen.update(i for i in ids if i is not None)
            found += page
            offset += len(page)
            total = answer.get("total")
            if isinstance(total, int) and not isinstance(total, bool):
                if offset >= total or not page:
                    return found
            elif len(page) < _PAGE:
                return found
        raise RocketChatUnavailable(f"GET {path}: over {_MAX_PAGES} pages; narrow the window")

    def _rate_wait(self, headers: httpx.Headers, reason: str) -> float:
        """Until ``X-RateLimit-Reset`` (epoch ms, by Rocket.Chat's clock: measured from its
        ``Date``), else the seconds its message says, else a minute."""
        reset = headers.get("x-ratelimit-reset", "")
        now = self._clock()
        date = headers.get("date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                now = email.utils.parsedate_to_datetime(date).timestamp()
        try:
            seconds = int(reset) / 1000 - now
        except ValueError:
            said = re.search(r"wait (\d+) seconds", reason)
            seconds = float(said.group(1)) if said else 60.0
        return min(max(seconds, 1.0), _MAX_RATE_WAIT)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client


class _NotFound(RocketChatError):
    """The record asked for is gone (a deleted visitor or user)."""


def _segment(value: str) -> str:
    """An id as one path segment (a hostile id cannot reach another endpoint)."""
    return quote(value, safe="")


def _permission(path: str) -> str:
    return next((name for prefix, name in PERMISSIONS if path.startswith(prefix)), "needed")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _reason(answer: Mapping[str, Any], text: str) -> str:
    return str(answer.get("error") or answer.get("message") or text[:300])


def _not_found(reason: str) -> bool:
    text = reason.lower()
    return "not-found" in text or "not found" in text or "invalid-user" in text


def _already_exists(reason: str) -> bool:
    text = reason.lower()
    return "e11000" in text or "duplicate key" in text or "already exists" in text
