"""HTTP forward: re-post each event (or chosen fields of it) to another URL, with its own token,
timeout and quick retries; failures after those go back to the worker's retry policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from omnihook.contracts import AnyEvent, EventType
from omnihook.store import backoff_delay, register_secret

from ..router import HandlerContext
from .base import (
    CrmAdapter,
    CrmRateLimited,
    CrmTransientError,
    CrmValidationError,
    HttpCrm,
    LinkStore,
)

__all__ = ["HttpForwardAdapter"]


class HttpForwardAdapter(CrmAdapter):
    """Posts events to ``url`` as JSON: the whole payload, or only the ``fields`` listed
    (dotted paths such as ``visitor.email``). Success is any 2xx; 4xx other than 429 is final."""

    kind = "http"

    def __init__(
        self,
        name: str = "http",
        *,
        url: str,
        token: str | None = None,
        token_header: str = "X-RocketChat-Livechat-Token",
        fields: Sequence[str] | None = None,
        events: Iterable[EventType] | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        delay: float = 1.0,
        links: LinkStore | None = None,
    ) -> None:
        super().__init__(name, links=links)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: url must be http:// or https://, got {url!r}")
        self.url = url
        self._headers = {"Content-Type": "application/json"}
        if token:
            register_secret(token)
            self._headers[token_header] = token
        self._fields = list(fields) if fields else None
        self._events = frozenset(events) if events is not None else frozenset(EventType)
        self._attempts = max(1, attempts)
        self._delay = delay
        self._http = HttpCrm(name, timeout)

    @property
    def events(self) -> frozenset[EventType]:
        return self._events

    async def handle(self, event: AnyEvent, context: HandlerContext) -> dict[str, Any] | None:
        if event.is_test or event.event_type is None:
            return None
        body = (
            context.raw_body
            if self._fields is None and context.raw_body
            else json.dumps(
                self._subset(event.to_dict()), separators=(",", ":"), ensure_ascii=False
            ).encode()
        )
        for attempt in range(1, self._attempts + 1):
            try:
                await self._post(body)
                return None
            except (CrmTransientError, CrmRateLimited):
                if attempt == self._attempts:
                    raise
                await asyncio.sleep(backoff_delay(self._delay, 2.0, attempt))
        return None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, body: bytes) -> None:
        response = await self._http.request("POST", self.url, content=body, headers=self._headers)
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 429:
            after = response.headers.get("Retry-After", "")
            raise CrmRateLimited(
                float(after) if after.isdigit() else self._delay, f"{self.name}: HTTP 429"
            )
        if response.status_code >= 500:
            raise self._http.server_error(response)
        raise CrmValidationError(
            f"{self.name}: {self.url} answered {response.status_code}: {response.text[:300]}"
        )

    def _subset(self, document: dict[str, Any]) -> dict[str, Any]:
        assert self._fields is not None
        subset: dict[str, Any] = {}
        for path in self._fields:
            value: Any = document
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                subset[path] = value
        return subset
