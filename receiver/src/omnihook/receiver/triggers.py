"""Livechat triggers with an external service ("use-external-service", Enterprise).

Rocket.Chat posts ``{"visitorToken": "...", "metadata": [{"key": "...", "value": "..."}]}`` with
the webhook's token header and shows the visitor the answer's messages, in ``order``, when (and
only when) the answer is HTTP 200 with a non-empty ``{"contents": [{"msg": str, "order": number}]}``.
Anything else shows the trigger's fallback message. A handler decorated with ``@router.trigger``
returns the message(s) to show, or nothing to let the fallback show.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from omnihook.store import storable_text

__all__ = ["TriggerRequest", "TriggerService"]

logger = logging.getLogger("omnihook.receiver")


@dataclass(frozen=True)
class TriggerRequest:
    """What Rocket.Chat asks the service: who the visitor is, and the trigger's metadata."""

    visitor_token: str
    metadata: dict[str, str] = field(default_factory=dict)


class TriggerService:
    """Turns a trigger request into the answer Rocket.Chat accepts, via the user's handler."""

    def __init__(self, handler: Callable[[TriggerRequest], Any], timeout: float = 5.0) -> None:
        self.handler = handler
        self.timeout = timeout

    async def answer(self, body: bytes) -> Response:
        try:
            document = json.loads(body)
        except ValueError:
            return _error(400, "invalid_json", "the body is not JSON")
        except RecursionError:
            return _error(400, "invalid_json", "the body is JSON nested too deeply")
        if not isinstance(document, dict):
            return _error(400, "not_an_object", "expected a JSON object")
        token = document.get("visitorToken")
        if not isinstance(token, str) or not token:
            return _error(422, "contract_violation", "visitorToken: required, a non-empty string")
        metadata = document.get("metadata")
        if metadata is None:
            metadata = []
        if not isinstance(metadata, list) or not all(
            isinstance(m, dict) and _is_scalar(m.get("key")) and _is_scalar(_value(m))
            for m in metadata
        ):
            return _error(
                422,
                "contract_violation",
                "metadata: expected a list of {key, value} objects with text values",
            )
        request = TriggerRequest(
            storable_text(token),
            {_text(m["key"]): _text(_value(m)) for m in metadata},
        )
        try:
            async with asyncio.timeout(self.timeout):
                result = self.handler(request)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            logger.error(
                "trigger handler did not answer within %g s: the visitor sees the fallback",
                self.timeout,
            )
            return _error(504, "trigger_timeout", f"no answer within {self.timeout:g} s")
        except Exception:
            logger.exception("trigger handler failed: the visitor sees the fallback")
            return _error(
                500, "trigger_failed", "the trigger handler failed; see the service's log"
            )
        messages = [result] if isinstance(result, str) else list(result or [])
        if not messages:
            return Response(status_code=204)  # nothing to say: Rocket.Chat shows the fallback
        if not all(isinstance(m, str) and m for m in messages):
            logger.error("trigger handler returned %r: expected text or a list of texts", result)
            return _error(
                500, "trigger_failed", "the trigger handler returned something that is not text"
            )
        return Response(
            json.dumps({"contents": _contents(messages)}, ensure_ascii=False).encode(
                "utf-8", "replace"
            ),
            media_type="application/json",
        )


def _value(item: dict[str, Any]) -> Any:
    value = item.get("value")
    return "" if value is None else value  # absent or null: empty; 0 and false stay "0", "False"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _text(value: Any) -> str:
    # Rocket.Chat sends strings; others read as JavaScript's String() would ("false", "0"), and
    # JSON's lone surrogates (which Python's json accepts) become U+FFFD.
    return storable_text(json.dumps(value) if isinstance(value, bool) else str(value))


def _contents(messages: Sequence[str]) -> list[dict[str, Any]]:
    return [{"msg": message, "order": order} for order, message in enumerate(messages)]


def _error(status: int, error: str, detail: str) -> Response:
    return Response(json.dumps({"error": error, "detail": detail}).encode(), status_code=status,
                    media_type="application/json")  # fmt: skip
