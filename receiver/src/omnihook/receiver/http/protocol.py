"""uvicorn's httptools protocol with a size limit on request heads and deadlines on slow clients.

httptools buffers a header until its end (growing a ``bytes`` object piece by piece), so one
128 MiB header held the event loop for seconds; and uvicorn waits forever for a request that
never completes. :class:`GuardedHttpToolsProtocol` counts the bytes of each request head before
the parser sees them and keeps one timer per connection for the phase it is in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .limits import HttpLimits

__all__ = ["GuardedHttpToolsProtocol"]

logger = logging.getLogger("omnihook.receiver.http")

# What a connection is waiting for. IDLE: nothing (a request is being answered, or none is due).
_HEAD, _BODY, _IDLE, _DONE = 0, 1, 2, 3

_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20
"""After a 431, the server keeps reading (and dropping) for up to this long and this much, so
that a client still sending its head reads the answer instead of a reset; a flood is cut."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` under :class:`~omnihook.receiver.http.HttpLimits`.

    - A request line and headers over ``max_header_bytes`` are refused with 431 as soon as the
      limit is passed, without reading them to their end.
    - Headers not complete within ``header_timeout`` of their first byte (or of the connection's
      start), and a body not complete within ``body_timeout`` or silent for
      ``body_gap_timeout``, end the connection with 408 (or a plain close once an answer has
      started).
    - Idle keep-alive connections close after uvicorn's ``timeout_keep_alive``.

    Error answers are JSON, like every answer of the receiver:
    ``{"error": "headers_too_large", "detail": "..."}`` and ``{"error": "request_timeout", ...}``.

    ``omnihook serve`` and ``omnihook inspect`` use it (see :func:`run_server`). With your own
    uvicorn, name it as the HTTP implementation; it applies the default limits::

        uvicorn myhooks:app --http omnihook.receiver.http:GuardedHttpToolsProtocol

    For other limits, make a subclass in your module and name that one::

        # myhooks.py
        from omnihook.receiver.http import GuardedHttpToolsProtocol, HttpLimits
        Protocol = GuardedHttpToolsProtocol.with_limits(HttpLimits(header_timeout=5))

        # uvicorn myhooks:app --http myhooks:Protocol --timeout-keep-alive 5

    The head count starts again with each request. When a request arrives pipelined behind
    another one's body in the same read, the part of its head in that read is not counted, so a
    head may pass the limit by at most one read (asyncio and uvloop read 256 KiB at most).
    """

    limits: ClassVar[HttpLimits] = HttpLimits()

    @classmethod
    def with_limits(cls, limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
        """This protocol with ``limits`` instead of the defaults (a subclass)."""
        subclass = type(cls.__name__, (cls,), {"limits": limits, "__module__": cls.__module__})
        return cast("type[GuardedHttpToolsProtocol]", subclass)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._phase = _HEAD
        self._head_bytes = 0
        self._phase_started = 0.0
        self._last_read = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._dropped = 0

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase_started = self._last_read = self.loop.time()
        self._arm(self._phase_started + self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = _DONE
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _DONE:  # refused: what still comes is dropped, up to a point
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self.transport.close()
            return
        now = self._last_read = self.loop.time()
        if self._phase == _IDLE:
            self._phase, self._head_bytes, self._phase_started = _HEAD, 0, now
        if self._phase == _HEAD:
            if self._head_bytes + len(data) > self.limits.max_header_bytes:
                self._feed_guarded(data)
            else:
                self._head_bytes += len(data)
                super().data_received(data)
        else:
            super().data_received(data)
        if self._phase == _HEAD:
            self._arm(self._phase_started + self.limits.header_timeout)
        elif self._phase == _BODY:
            limits = self.limits
            self._arm(min(self._phase_started + limits.body_timeout, now + limits.body_gap_timeout))

    def handle_websocket_upgrade(self) -> None:
        self._phase = _DONE
        self._disarm()
        super().handle_websocket_upgrade()

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self._phase == _IDLE:  # pipelined behind the previous request, in the same read
            self._phase, self._head_bytes, self._phase_started = _HEAD, 0, self._last_read
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase, self._phase_started = _BODY, self._last_read
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._phase == _BODY:
            self._phase = _IDLE
        super().on_message_complete()

    # The guards

    def _feed_guarded(self, data: bytes) -> None:
        """Feed ``data`` in pieces, so that the parser never holds more of a head than allowed."""
        view = memoryview(data)
        limit = self.limits.max_header_bytes
        while view:
            if self._phase == _HEAD:
                room = limit - self._head_bytes
                if room <= 0:
                    self._refuse_head()
                    return
                piece, view = view[:room], view[room:]
                self._head_bytes += len(piece)
            else:
                piece, view = view, view[len(view) :]
            super().data_received(piece)  # type: ignore[arg-type]  # httptools reads any buffer
            if self.transport.is_closing() or self._phase == _DONE:
                return

    def _refuse_head(self) -> None:
        limit = self.limits.max_header_bytes
        self._give_up(431, "headers_too_large",
                      f"the request line and headers exceed {limit:,} bytes")  # fmt: skip
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    def _arm(self, when: float) -> None:
        if self._deadline is not None:
            if self._deadline_at <= when:
                return  # fires sooner and looks again then
            self._deadline.cancel()
        self._deadline_at = when
        self._deadline = self.loop.call_at(when, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self._phase not in (_HEAD, _BODY) or self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self.limits
        if self._phase == _HEAD:
            due = self._phase_started + limits.header_timeout
            if now < due:
                self._arm(due)
            elif self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request waits behind an answer under way: its clock starts anew.
                self._phase_started = now
                self._arm(now + limits.header_timeout)
            else:
                self._give_up(408, "request_timeout",
                              f"the request line and headers did not arrive within {limits.header_timeout:g} s")  # fmt: skip
                self.transport.close()
            return
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            # The server's own back-pressure, or a client waiting for our "100 Continue" (sent
            # when the app first reads the body): not the client's slowness.
            self._last_read = now
            self._arm(now + limits.body_gap_timeout)
            return
        whole = self._phase_started + limits.body_timeout
        gap = self._last_read + limits.body_gap_timeout
        if now < min(whole, gap):
            self._arm(min(whole, gap))
            return
        if now >= whole:
            detail = f"the request body did not arrive within {limits.body_timeout:g} s"
        else:
            detail = f"no byte of the request body for {limits.body_gap_timeout:g} s"
        self._give_up(408, "request_timeout", detail)
        self.transport.close()

    def _give_up(self, status: int, error: str, detail: str) -> None:
        """Answer ``status`` unless another answer is (or was) on its way, and stop reading."""
        phase, self._phase = self._phase, _DONE
        self._disarm()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info("%d to %s: %s", status, client, detail)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if phase == _BODY and not cycle.response_started:
                # The app waits for the rest of the body: it gets a disconnect, the client our 408.
                cycle.disconnected = True
                cycle.message_event.set()
            else:
                self.transport.close()  # an answer is under way: no clean place for ours
                return
        elif phase == _BODY:
            self.transport.close()  # answered already (without reading the whole body)
            return
        self.transport.write(self._error_response(status, error, detail))

    def _error_response(self, status: int, error: str, detail: str) -> bytes:
        body = json.dumps({"error": error, "detail": detail}).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]  # fmt: skip
        return b"".join(content)
