"""uvicorn's httptools protocol with a size limit on request heads and deadlines on slow clients.

httptools buffers a header until its end (growing a ``bytes`` object piece by piece), so one
128 MiB header held the event loop for seconds; and uvicorn waits forever for a request that
never completes. :class:`GuardedHttpToolsProtocol` feeds the parser in pieces no larger than what
a head may still take, and keeps one timer per connection for the phase it is in: every phase in
which the connection waits for the client has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, ClassVar, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .limits import HttpLimits

__all__ = ["GuardedHttpToolsProtocol"]

logger = logging.getLogger("omnihook.receiver.http")

# What a connection is waiting for, and the deadline that bounds the wait:
# _HEAD    the rest of a request line and headers         header_timeout from their first byte
# _BODY    the rest of a body (answered or not)           body_timeout, and body_gap_timeout
# _ANSWER  the server's answer to a complete request      none: the server's time, not the client's
# _IDLE    the next request, every answer given           keep-alive (uvicorn's timeout_keep_alive)
# _DONE    nothing: refused, upgraded or closed           a close within _LINGER_SECONDS
# In any phase, a client that leaves the answers unread (writing paused) for send_timeout is cut.
_HEAD, _BODY, _ANSWER, _IDLE, _DONE = range(5)

_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20
"""After a refusal (431, 400), the server keeps reading (and dropping) for up to this long and
this much, so that a client still sending reads the answer instead of a reset; a flood is cut."""


class _WatchedFlowControl(FlowControl):
    """uvicorn's flow control, telling the protocol when reading or writing pauses or may have
    resumed.

    uvicorn's ``receive`` calls ``resume_reading`` each time the app asks for the body (after
    sending any "100 Continue"), so the call is also the moment the app starts wanting a body."""

    def __init__(self, transport: asyncio.Transport, on_change: Callable[[], None]) -> None:
        super().__init__(transport)
        self._on_change = on_change

    def pause_reading(self) -> None:
        super().pause_reading()
        self._on_change()

    def resume_reading(self) -> None:
        super().resume_reading()
        self._on_change()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._on_change()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._on_change()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` under :class:`~omnihook.receiver.http.HttpLimits`.

    - A request line and headers over ``max_header_bytes`` are refused with 431 as soon as the
      limit is passed, without reading them to their end; so are the framing bytes of a chunked
      body (chunk-size lines, trailers) between two pieces of data.
    - Headers not complete within ``header_timeout`` of their first byte (or of the connection's
      start), and a body not complete within ``body_timeout`` or silent for
      ``body_gap_timeout``, end the connection with 408 (or a plain close once an answer has
      started). The body's clocks stop while the server itself does not read (a request queued
      behind another one's answer, a body the app has not asked for yet).
    - A connection with nothing due, including one answered before its body ended, closes after
      uvicorn's ``timeout_keep_alive``.
    - A client that leaves the answers unread for ``send_timeout`` once the buffers are full (or
      once the server has closed) is cut.
    - A request the parser cannot read (a bad ``Content-Length``, a garbled request line) gets
      400 ``bad_request``, with what the parser said.

    Error answers are JSON, like every answer of the receiver:
    ``{"error": "headers_too_large", "detail": "..."}``, ``{"error": "request_timeout", ...}``,
    ``{"error": "bad_request", ...}``.

    ``omnihook serve`` and ``omnihook inspect`` use it (see :func:`run_server`). With your own
    uvicorn, name it as the HTTP implementation; it applies the default limits (and turn off
    websockets: an upgraded connection leaves these limits)::

        uvicorn myhooks:app --http omnihook.receiver.http:GuardedHttpToolsProtocol --ws none

    For other limits, make a subclass in your module and name that one::

        # myhooks.py
        from omnihook.receiver.http import GuardedHttpToolsProtocol, HttpLimits
        Protocol = GuardedHttpToolsProtocol.with_limits(HttpLimits(header_timeout=5))

        # uvicorn myhooks:app --http myhooks:Protocol --ws none --timeout-keep-alive 5

    The head count starts again with each request. A request pipelined right behind a chunked
    body, in the same read as its end, may pass the limit by what of its head came in that piece
    (at most ``max_header_bytes`` again); and so may the framing after the last data of a chunked
    body read in the same piece.
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
        self._phase_started = 0.0
        self._last_read = 0.0
        self._head_bytes = 0
        self._framing_bytes = 0
        """Bytes fed to the parser in a body since its last piece of data (chunked framing)."""
        self._body_left: int | None = None
        """What a ``Content-Length`` body still owes; ``None`` for a chunked body."""
        self._held_since: float | None = None
        """Since when the server, not the client, holds a head or body up."""
        self._unread_since: float | None = None
        """Since when the client has left the server's answers unread (writing paused)."""
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._dropped = 0
        self._abort_scheduled = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _WatchedFlowControl(transport, self._flow_changed)
        self._phase_started = self._last_read = self.loop.time()
        self._arm_for_phase()

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = _DONE
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _DONE:  # refused: what still comes is dropped, up to a point
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self._close()
            return
        now = self._last_read = self.loop.time()
        self._account_hold(now)
        self._feed(data)
        if self._phase != _DONE and not self.transport.is_closing():
            self._arm_for_phase()

    def handle_websocket_upgrade(self) -> None:
        self._phase = _DONE
        self._disarm()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from its ``except httptools.HttpParserError`` with a fixed text: the
        # parser's own words are in the exception being handled.
        error = sys.exception()
        detail = str(error) if isinstance(error, httptools.HttpParserError) and str(error) else msg
        self._refuse(400, "bad_request", detail)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._unset_keepalive_if_required()  # one timer per connection: this protocol's
        if self.transport.is_closing():  # the answer said "close"
            self._close()
            return
        if self._phase == _DONE:
            return
        now = self.loop.time()
        self._account_hold(now)
        if self._phase == _ANSWER and self.cycle.response_complete:  # the last one due
            self._phase, self._phase_started = _IDLE, now
        self._arm_for_phase()

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self._phase in (_ANSWER, _IDLE):  # pipelined behind the previous request, same piece
            self._start_head(self._last_read)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase, self._phase_started = _BODY, self._last_read
        self._framing_bytes, self._body_left, self._held_since = 0, None, None
        for name, value in self.headers:
            if name == b"content-length" and value.strip().isdigit():  # the parser checked it
                self._body_left = int(value)
        super().on_headers_complete()
        if self.parser.should_upgrade() and not self._should_upgrade():
            # The parser reads nothing after an upgrade request it was not upgraded for: the
            # answer is the last one on this connection.
            self.cycle.keep_alive = False
        self._account_hold(self._last_read)

    def on_body(self, body: bytes) -> None:
        self._framing_bytes = 0
        if self._body_left is not None:
            self._body_left -= len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._phase == _BODY:
            answered = self.cycle is not None and self.cycle.response_complete
            self._phase, self._phase_started = (_IDLE if answered else _ANSWER), self._last_read
            self._held_since = None
        super().on_message_complete()

    # The guards

    def _start_head(self, now: float) -> None:
        self._phase, self._head_bytes, self._phase_started = _HEAD, 0, now
        self._held_since = None

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` in pieces, so that the parser never holds more of a head, or of the
        framing between two pieces of a chunked body, than allowed."""
        limit = self.limits.max_header_bytes
        view = memoryview(data)
        while view:
            if self._phase in (_ANSWER, _IDLE):
                self._start_head(self._last_read)
            if self._phase == _HEAD:
                room = limit - self._head_bytes
            elif self._body_left:  # up to the end of a Content-Length body exactly
                room = self._body_left
            else:
                room = limit - self._framing_bytes
            if room <= 0:
                self._refuse_oversize()
                return
            piece, view = view[:room], view[room:]
            if self._phase == _HEAD:
                self._head_bytes += len(piece)
            elif self._body_left is None:
                self._framing_bytes += len(piece)  # until the next piece of data (on_body)
            # A whole read (most of them) goes as it came; httptools reads any buffer.
            super().data_received(data if len(piece) == len(data) else piece)  # type: ignore[arg-type]
            if self._phase == _DONE or self.transport.is_closing():
                return

    def _refuse_oversize(self) -> None:
        limit = f"{self.limits.max_header_bytes:,} bytes"
        if self._phase == _HEAD:
            detail = f"the request line and headers exceed {limit}"
        else:
            detail = f"the chunk-size lines or trailers of the request body exceed {limit}"
        self._refuse(431, "headers_too_large", detail)

    def _refuse(self, status: int, error: str, detail: str) -> None:
        """Answer ``status`` (unless another answer is under way), then read no more and close."""
        self._give_up(status, error, detail)
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self._close)

    def _close(self) -> None:
        """Close; what is still buffered for a client that reads none of it is dropped after
        ``send_timeout`` (a transport otherwise waits forever to flush it before closing)."""
        self.transport.close()
        if self.transport.get_write_buffer_size() and not self._abort_scheduled:
            self._abort_scheduled = True
            self.loop.call_later(self.limits.send_timeout, self.transport.abort)

    def _flow_changed(self) -> None:
        if self._phase == _DONE or self.transport.is_closing():
            return
        now = self.loop.time()
        if not self.flow.write_paused:
            self._unread_since = None
        elif self._unread_since is None:
            self._unread_since = now
        self._account_hold(now)
        self._arm_for_phase()

    def _server_holds(self) -> bool:
        """Whether the client cannot be blamed for waiting: the server does not read, or a
        client that asked for "100 Continue" has not been told to go on yet."""
        if self.flow.read_paused:
            return True
        cycle = self.cycle
        return self._phase == _BODY and cycle is not None and cycle.waiting_for_100_continue

    def _account_hold(self, now: float) -> None:
        """Stop the clocks of the phase while the server holds it; start them again after."""
        if self._phase not in (_HEAD, _BODY):
            self._held_since = None
        elif self._server_holds():
            if self._held_since is None:
                self._held_since = now
        elif self._held_since is not None:
            self._phase_started += now - self._held_since
            self._last_read = max(self._last_read, now)  # no byte could come: not a silence
            self._held_since = None

    def _phase_due(self, now: float) -> float | None:
        """When the phase's deadline passes (``None``: nothing is due from the client); while
        the server holds a head or body up, when to look again."""
        limits = self.limits
        if self._phase == _HEAD:
            if self._held_since is not None:
                return now + limits.header_timeout
            return self._phase_started + limits.header_timeout
        if self._phase == _BODY:
            if self._held_since is not None:
                return now + limits.body_gap_timeout
            gap = self._last_read + limits.body_gap_timeout
            return min(self._phase_started + limits.body_timeout, gap)
        if self._phase == _IDLE:
            return self._phase_started + self.timeout_keep_alive
        return None

    def _arm_for_phase(self) -> None:
        due = self._phase_due(self.loop.time())
        if self._unread_since is not None:
            cut = self._unread_since + self.limits.send_timeout
            due = cut if due is None else min(due, cut)
        if due is not None:
            self._arm(due)

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
        if self._phase == _DONE or self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self.limits
        if self._unread_since is not None and now >= self._unread_since + limits.send_timeout:
            self._phase = _DONE
            logger.info("cut %s: it left the answers unread for %g s", self._client_name(),
                        limits.send_timeout)  # fmt: skip
            self.transport.abort()  # a close would wait for the client to read
            return
        self._account_hold(now)
        if self._held_since is None:
            due = self._phase_due(now)
            if due is not None and now >= due:
                self._expire(now)
        if self._phase != _DONE and not self.transport.is_closing():
            self._arm_for_phase()

    def _expire(self, now: float) -> None:
        limits = self.limits
        if self._phase == _IDLE:
            self._phase = _DONE
            self._close()
        elif self._phase == _HEAD:
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request waits behind an answer under way: its clock starts anew.
                self._phase_started = now
                return
            self._give_up(408, "request_timeout",
                          f"the request line and headers did not arrive within {limits.header_timeout:g} s")  # fmt: skip
            self._close()
        else:
            if now >= self._phase_started + limits.body_timeout:
                detail = f"the request body did not arrive within {limits.body_timeout:g} s"
            else:
                detail = f"no byte of the request body for {limits.body_gap_timeout:g} s"
            self._give_up(408, "request_timeout", detail)
            self._close()

    def _give_up(self, status: int, error: str, detail: str) -> None:
        """Answer ``status`` unless another answer is (or was) on its way, and stop reading."""
        phase, self._phase = self._phase, _DONE
        self._disarm()
        logger.info("%d to %s: %s", status, self._client_name(), detail)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if phase == _BODY and not cycle.response_started:
                # The app waits for the rest of the body: it gets a disconnect, the client our answer.
                cycle.disconnected = True
                cycle.message_event.set()
            else:
                self._close()  # an answer is under way: no clean place for ours
                return
        elif phase == _BODY:
            self._close()  # answered already (without reading the whole body)
            return
        self.transport.write(self._error_response(status, error, detail))

    def _client_name(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    def _error_response(self, status: int, error: str, detail: str) -> bytes:
        body = json.dumps({"error": error, "detail": detail}).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]  # fmt: skip
        return b"".join(content)
