"""Calling a Livechat trigger's external service the way Rocket.Chat does.

No call at all when the secret token is empty; otherwise ``POST`` of
``{"visitorToken", "metadata": [{"key", "value"}]}`` with ``Accept`` and ``Content-Type`` JSON and
the token header, within the trigger's timeout, no retry. Only an HTTP 200 with a non-empty
``contents`` list of ``{"msg": str, "order": number}`` is shown (sorted by ``order``); anything else
shows the trigger's fallback message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from omnihook.contracts import TOKEN_HEADER

__all__ = ["TriggerAnswer", "call_trigger_service"]


@dataclass(frozen=True)
class TriggerAnswer:
    """What the visitor would see, and why."""

    messages: list[str]
    fallback_used: bool
    reason: str | None = None
    """Why the fallback was used."""


async def call_trigger_service(
    url: str,
    *,
    secret: str | None,
    visitor_token: str,
    metadata: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    fallback: str | None = None,
) -> TriggerAnswer:
    """Ask the service at ``url`` what to tell the visitor (see the module docstring)."""

    def fall_back(reason: str) -> TriggerAnswer:
        return TriggerAnswer([fallback] if fallback else [], True, reason)

    if not secret:
        return fall_back("no secret token: Rocket.Chat does not call the service")
    body: dict[str, Any] = {"visitorToken": visitor_token}
    if metadata:
        body["metadata"] = [{"key": key, "value": value} for key, value in metadata.items()]
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        TOKEN_HEADER: secret,
    }
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            status = response.status
            text = await response.text()
    except TimeoutError:
        return fall_back(f"no answer within {timeout:g} s")
    except aiohttp.ClientError as exc:
        return fall_back(f"cannot reach the service: {exc}")
    if status != 200:
        return fall_back(f"HTTP {status}")
    try:
        answer = json.loads(text)
        contents = answer["contents"]
        items = sorted(
            ((float(item["order"]), str(item["msg"])) for item in contents), key=lambda i: i[0]
        )
        if not items or not all(isinstance(item["msg"], str) for item in contents):
            raise ValueError("empty contents")
    except (ValueError, KeyError, TypeError) as exc:
        return fall_back(f"not the answer Rocket.Chat accepts ({exc})")
    return TriggerAnswer([message for _, message in items], False)
