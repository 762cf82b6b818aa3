"""One HTTP POST with a per-attempt timeout, on a pooled aiohttp session.

aiohttp, not httpx: against the same local server httpx falls from ~2,000 to ~600 requests/s as
concurrency goes from 1 to 64 while aiohttp keeps ~19,000/s (see DESIGN.md), and the sender must
later push thousands of events per second from one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

__all__ = ["HttpResponse", "HttpTransport", "TransportError"]


@dataclass(frozen=True)
class HttpResponse:
    """What came back: the status and the body as text."""

    status: int
    text: str


class TransportError(Exception):
    """No HTTP answer: a network error or a timeout (Rocket.Chat retries both)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class HttpTransport:
    """A lazily opened connection pool bound to the event loop that first uses it."""

    def __init__(self, max_connections: int = 100) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResponse:
        session = self._session_for_this_loop()
        try:
            async with session.post(
                url,
                data=body,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                return HttpResponse(response.status, raw.decode("utf-8", "replace"))
        except TimeoutError:
            raise TransportError(f"no answer within {timeout:g} s", timed_out=True) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        """Close the pool (pending connections are dropped)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self._loop = None

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A pool cannot move between event loops; a new loop (say, a new test) gets its own.
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector)
            self._loop = loop
        return self._session
