"""Talking back into a chat: Rocket.Chat's REST API as a bot or agent user.

A webhook's answer cannot reach the visitor (Rocket.Chat stores it as crmData), so replies go
through ``POST /api/v1/chat.sendMessage`` with ``X-User-Id`` and ``X-Auth-Token``. Each reply
carries a message ``_id`` derived from the event, the handler and the reply's number, so a
handler that runs again after a failure does not post its replies twice: Rocket.Chat refuses the
same ``_id``, and that refusal counts as "already sent".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from omnihook.store import backoff_delay, register_secret

from .router import PermanentError

__all__ = ["ReplyError", "ReplyRefused", "RocketChatApi"]


class ReplyError(Exception):
    """A reply could not be posted (after retries for what may pass)."""


class ReplyRefused(ReplyError, PermanentError):
    """Rocket.Chat refused the reply itself (credentials, room, permission): fix, then replay."""


class RocketChatApi:
    """Posts messages into rooms as the user ``user_id`` (a bot or an agent)."""

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
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the Rocket.Chat URL must be http:// or https://, got {url!r}")
        if not user_id or not auth_token:
            raise ValueError(
                "replying needs a Rocket.Chat user id and auth token (a bot's personal access token)"
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
        self._client: httpx.AsyncClient | None = None

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
                reason = str(answer.get("error") or answer.get("message") or response.text[:300])
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

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _already_exists(reason: str) -> bool:
    text = reason.lower()
    return "e11000" in text or "duplicate key" in text or "already exists" in text
