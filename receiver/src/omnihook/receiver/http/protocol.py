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
# _IDLE    the next request, every answer given           keep_alive_timeout
# _DONE    nothing more is read: refused, upgraded,       a close once the last answer is out
#          or too much body after its answer             (what still comes dropped meanwhile,
#                                                         up to _LINGER_SECONDS and _LINGER_BYTES)
# In any phase, a client that leaves the answers unread (writing paused) for send_timeout is cut.
_HEAD, _BODY, _ANSWER, _IDLE, _DONE = range(5)

_UNREAD = -1
"""A body's ``Content-Length`` not looked up yet (most bodies end in the read of their head)."""

_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20
"""After a refusal (431, 400), the server keeps reading (and dropping) for up to this long and
this much, so that a client still sending reads the answer instead of a reset; a flood is cut.
The same budget bounds what of a body is read (and dropped) after an answer given before the
body ended."""


class _WatchedFlowControl(FlowControl):
    """uvicorn's flow control, telling the protocol when reading or writing pauses or resumes.

    uvicorn's ``receive`` calls ``resume_reading`` each time the app asks for the body (after
    sending any "100 Continue"): while the protocol has a phase's clocks stopped, that call is
    passed on too, as the moment the app starts wanting a body; otherwise a call that changes
    nothing costs nothing. While a refusal waits for the answers before it, reading stays paused.
    """

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def pause_reading(self) -> None:
        if not self.read_paused:
            super().pause_reading()
            self._protocol._flow_changed()

    def resume_reading(self) -> None:
        protocol = self._protocol
        if self.read_paused:
            if protocol._held_answer is not None:
                return  # nothing more is read until the refusal is out
            super().resume_reading()
            protocol._flow_changed()
        elif protocol._held_since is not None:
            protocol._flow_changed()

    def pause_writing(self) -> None:
        if not self.write_paused:
            super().pause_writing()
            self._protocol._flow_changed()

    def resume_writing(self) -> None:
        if self.write_paused:
            super().resume_writing()
            self._protocol._flow_changed()


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
    - A connection idle between requests closes after ``keep_alive_timeout`` (the limits'
      value: uvicorn's ``timeout_keep_alive`` does not apply to this protocol).
    - A body still coming after its answer (a 401 or 413 given before the body ended) is read
      and dropped up to 1 MiB, within the body deadlines; past that, or when its
      ``Content-Length`` says more than that is still to come, the connection closes.
    - A client that leaves the answers unread for ``send_timeout`` once the buffers are full (or
      once the server has closed) is cut.
    - A request the parser cannot read (a bad ``Content-Length``, a garbled request line) gets
      400 ``bad_request``, with what the parser said.
    - A refused request pipelined behind others gets its answer after theirs, then the
      connection closes; nothing more is read meanwhile.
    - An upgrade request (websocket, h2c) is answered over HTTP, and closes the connection: one
      line at DEBUG.

    Error answers are JSON, like every answer of the receiver:
    ``{"error": "headers_too_large", "detail": "..."}``, ``{"error": "request_timeout", ...}``,
    ``{"error": "bad_request", ...}``; each refusal is one line at INFO on the
    ``omnihook.receiver.http`` logger.

    ``omnihook serve`` and ``omnihook inspect`` use it (see :func:`run_server`). With your own
    uvicorn, name it as the HTTP implementation; it applies the default limits (and turn off
    websockets: an upgraded connection leaves these limits)::

        uvicorn myhooks:app --http omnihook.receiver.http:GuardedHttpToolsProtocol --ws none

    For other limits, make a subclass in your module and name that one::

        # myhooks.py
        from omnihook.receiver.http import GuardedHttpToolsProtocol, HttpLimits
        Protocol = GuardedHttpToolsProtocol.with_limits(HttpLimits(keep_alive_timeout=15))

        # uvicorn myhooks:app --http myhooks:Protocol --ws none

    The head count starts again with each request, and a read is fed to the parser whole when it
    fits: a request that begins in the same read as the end of the one before it (pipelined)
    may pass the limit by what of its head came in that read, so up to twice the limit in all;
    and so may the framing after the last data of a chunked body read in the same piece.
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
        self._declared: int | None = None
        """A body's ``Content-Length`` (``None``: chunked), looked up once a body takes more than
        the read its head came in (``_UNREAD`` until then)."""
        self._body_seen = 0
        """Bytes of the body parsed so far."""
        self._dropped = 0
        """Bytes read and dropped: of a body after its answer, then after a refusal."""
        self._held_since: float | None = None
        """Since when the server, not the client, holds a head or body up."""
        self._held_answer: bytes | None = None
        """A refusal waiting for the answers to the requests before it."""
        self._unread_since: float | None = None
        """Since when the client has left the server's answers unread (writing paused)."""
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._linger: asyncio.TimerHandle | None = None
        self._abort: asyncio.TimerHandle | None = None

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _WatchedFlowControl(transport, self)
        now = self._phase_started = self._last_read = self.loop.time()
        self._arm_for_phase(now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase, self._held_answer = _DONE, None
        super().connection_lost(exc)
        for timer in (self._deadline, self._linger, self._abort):
            if timer is not None:
                timer.cancel()  # a pending timer keeps the protocol, and all it holds, alive
        self._deadline = self._linger = self._abort = None

    def data_received(self, data: bytes) -> None:
        if self._phase == _DONE:  # nothing more is read: what still comes is dropped, up to a point
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self._close()
            return
        now = self._last_read = self.loop.time()
        if self._held_since is not None:
            self._account_hold(now)
        self._feed(data)
        phase = self._phase
        if phase == _DONE or (phase == _ANSWER and self._unread_since is None):
            return  # nothing due from the client (most reads end here: a whole request)
        if not self.transport.is_closing():
            if self.flow.read_paused:  # paused in this read (a request queued behind another)
                self._account_hold(now)
            self._arm_for_phase(now)

    def handle_websocket_upgrade(self) -> None:
        self._phase = _DONE
        self._disarm()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "bad_request", msg)

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn warns twice for each such request, once to install a websocket library: a
        # receiver offers no upgrade, and the request is answered over HTTP.
        upgrade = self._get_upgrade()
        asked = f"an upgrade to {upgrade.decode('latin-1')!r}" if upgrade else self.scope["method"]
        logger.debug("%s asked for %s: answered over HTTP, then closed", self._client_name(), asked)

    def on_response_complete(self) -> None:
        # uvicorn's, without the keep-alive timer it starts (and this protocol's deadlines
        # would cancel) for every answer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():  # the answer said "close"
            self._close()
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._held_answer is not None:  # every answer before the refusal is out
            answer, self._held_answer = self._held_answer, None
            self.transport.write(answer)
            self.flow.resume_reading()
            self._end_reading()
            return
        phase = self._phase
        if phase == _DONE:
            return
        now = self.loop.time()
        if phase == _ANSWER:
            if self.cycle.response_complete:  # the last one due: idle (most answers end here)
                self._phase, self._phase_started = _IDLE, now
                timer, due = self._deadline, now + self.limits.keep_alive_timeout
                if timer is not None and self._deadline_at <= due and self._unread_since is None:
                    return  # the timer fires sooner and looks again then
        elif phase == _BODY and self.cycle.response_complete:  # answered before its body ended
            self._dropped = 0
            left = self._body_left()
            if left is not None and left > _LINGER_BYTES:
                self._end_reading()  # more to come than worth reading
                return
        if self._held_since is not None or self.flow.read_paused:
            self._account_hold(now)
        self._arm_for_phase(now)

    # Parser callbacks: each runs once per request, so they call uvicorn's by name (a zero-argument
    # super() costs about 70 ns more in CPython 3.11, a few tenths of a microsecond per request)

    def on_message_begin(self) -> None:
        if self._phase in (_ANSWER, _IDLE):  # pipelined, in the same piece
            self._start_head(self._last_read)
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        # It may raise (a URL httptools cannot parse): the request is still in its head then.
        HttpToolsProtocol.on_headers_complete(self)
        self._phase, self._phase_started, self._held_since = _BODY, self._last_read, None
        self._framing_bytes, self._declared, self._body_seen = 0, _UNREAD, 0
        if self.parser.should_upgrade() and not self._should_upgrade():
            # The parser reads nothing after an upgrade request it was not upgraded for: the
            # answer is the last one on this connection.
            self.cycle.keep_alive = False
        if self.flow.read_paused or self.expect_100_continue:
            self._account_hold(self._last_read)

    def on_body(self, body: bytes) -> None:
        self._framing_bytes = 0
        self._body_seen += len(body)
        HttpToolsProtocol.on_body(self, body)

    def on_message_complete(self) -> None:
        if self._phase == _BODY:
            answered = self.cycle is not None and self.cycle.response_complete
            self._phase, self._phase_started = (_IDLE if answered else _ANSWER), self._last_read
            self._held_since = None
        HttpToolsProtocol.on_message_complete(self)

    # The guards

    def _start_head(self, now: float) -> None:
        self._phase, self._head_bytes, self._phase_started = _HEAD, 0, now
        self._held_since = None

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` to the parser in pieces, so that it never holds more of a head, or of
        the framing between two pieces of a chunked body, than allowed."""
        limit = self.limits.max_header_bytes
        rest: bytes | memoryview = data
        while rest:
            phase = self._phase
            if phase in (_ANSWER, _IDLE):  # a new request (as _start_head, inline)
                self._phase = phase = _HEAD
                self._head_bytes, self._phase_started, self._held_since = 0, self._last_read, None
            if phase == _HEAD:
                room = limit - self._head_bytes
            else:  # up to the end of a Content-Length body, or what chunk framing may take
                left = self._body_left()
                room = left or limit - self._framing_bytes
            if room <= 0:
                self._refuse_oversize()
                return
            piece: bytes | memoryview
            if len(rest) > room:
                view = rest if isinstance(rest, memoryview) else memoryview(rest)
                piece, rest = view[:room], view[room:]
            else:
                piece, rest = rest, b""
            if phase == _HEAD:
                self._head_bytes += len(piece)
            else:
                if left is None:
                    self._framing_bytes += len(piece)  # until the next piece of data (on_body)
                if self.cycle.response_complete:  # answered before the body ended
                    self._dropped += len(piece)
                    if self._dropped > _LINGER_BYTES:
                        logger.info("closed %s: more than %s bytes of body after its answer",
                                    self._client_name(), f"{_LINGER_BYTES:,}")  # fmt: skip
                        self._close()
                        return
            try:
                self.parser.feed_data(piece)  # httptools reads any buffer
            except httptools.HttpParserUpgrade:
                self._upgrade_requested()
                return
            except httptools.HttpParserError as error:
                self._refuse(400, "bad_request", _parser_said(error))
                return
            if self._phase == _DONE or self.transport.is_closing():
                return

    def _body_left(self) -> int | None:
        """What a ``Content-Length`` body still owes; ``None`` for a chunked body."""
        declared = self._declared
        if declared == _UNREAD:
            declared = None
            for name, value in self.headers:
                if name == b"content-length" and value.strip().isdigit():  # the parser checked it
                    declared = int(value)
            self._declared = declared
        return None if declared is None else declared - self._body_seen

    def _upgrade_requested(self) -> None:
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()
            self._phase = _DONE  # the parser reads nothing more; the answer closes

    def _refuse_oversize(self) -> None:
        limit = f"{self.limits.max_header_bytes:,} bytes"
        if self._phase == _HEAD:
            detail = f"the request line and headers exceed {limit}"
        else:
            detail = f"the chunk-size lines or trailers of the request body exceed {limit}"
        self._refuse(431, "headers_too_large", detail)

    def _refuse(self, status: int, error: str, detail: str) -> None:
        """Answer ``status`` (now or after the answers before it), read no more, and close."""
        if self._answer(status, error, detail):
            self._end_reading()

    def _end_reading(self) -> None:
        """Read no more: end the answers (a FIN after them), then drop what still comes, up to
        ``_LINGER_SECONDS`` and ``_LINGER_BYTES``, and close."""
        self._phase = _DONE
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self._linger is None:
            self._linger = self.loop.call_later(_LINGER_SECONDS, self._close)

    def _close(self) -> None:
        """Close; what is still buffered for a client that reads none of it is dropped after
        ``send_timeout`` (a transport otherwise waits forever to flush it before closing)."""
        self._phase = _DONE
        self.transport.close()
        if self.transport.get_write_buffer_size() and self._abort is None:
            self._abort = self.loop.call_later(self.limits.send_timeout, self.transport.abort)

    def _flow_changed(self) -> None:
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if not self.flow.write_paused:
            self._unread_since = None
        elif self._unread_since is None:
            self._unread_since = now
        self._account_hold(now)
        self._arm_for_phase(now)

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
        phase, limits = self._phase, self.limits
        if phase == _IDLE:
            return self._phase_started + limits.keep_alive_timeout
        if phase == _HEAD:
            if self._held_since is not None:
                return now + limits.header_timeout
            return self._phase_started + limits.header_timeout
        if phase == _BODY:
            if self._held_since is not None:
                return now + limits.body_gap_timeout
            gap = self._last_read + limits.body_gap_timeout
            return min(self._phase_started + limits.body_timeout, gap)
        return None

    def _arm_for_phase(self, now: float) -> None:
        due = self._phase_due(now)
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
        if self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self.limits
        if self._unread_since is not None and now >= self._unread_since + limits.send_timeout:
            self._phase = _DONE
            logger.info("cut %s: it left the answers unread for %g s", self._client_name(),
                        limits.send_timeout)  # fmt: skip
            self.transport.abort()  # a close would wait for the client to read
            return
        if self._phase != _DONE:
            self._account_hold(now)
            if self._held_since is None:
                due = self._phase_due(now)
                if due is not None and now >= due:
                    self._expire(now)
        if not self.transport.is_closing():
            self._arm_for_phase(now)

    def _expire(self, now: float) -> None:
        limits = self.limits
        if self._phase == _IDLE:
            self._close()
            return
        if self._phase == _HEAD:
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request waits behind an answer under way: its clock starts anew.
                self._phase_started = now
                return
            detail = f"the request line and headers did not arrive within {limits.header_timeout:g} s"  # fmt: skip
        elif now >= self._phase_started + limits.body_timeout:
            detail = f"the request body did not arrive within {limits.body_timeout:g} s"
        else:
            detail = f"no byte of the request body for {limits.body_gap_timeout:g} s"
        if self._answer(408, "request_timeout", detail):
            self._close()

    def _answer(self, status: int, error: str, detail: str) -> bool:
        """Give up on the request in progress: answer ``status`` now (``True``), or once the
        answers to the requests before it are out (reading paused until then), or close without
        an answer when the request has one already (under way or given)."""
        phase, self._phase, self._dropped = self._phase, _DONE, 0
        client, cycle = self._client_name(), self.cycle
        if phase == _BODY and cycle is not None:  # the request has its cycle
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()  # queued behind answers under way: it never starts
                return self._hold(status, error, detail)
            if cycle.response_started:
                why = "answered already" if cycle.response_complete else "its answer was under way"
                logger.info("closed %s: %s (%s)", client, detail, why)
                self._close()
                return False
            # The app waits for the rest of the body: it gets a disconnect, the client our answer.
            cycle.disconnected = True
            cycle.message_event.set()
        elif cycle is not None and not cycle.response_complete:  # an earlier request's
            return self._hold(status, error, detail)
        logger.info("%d to %s: %s", status, client, detail)
        self.transport.write(self._error_response(status, error, detail))
        return True

    def _hold(self, status: int, error: str, detail: str) -> bool:
        client = self._client_name()
        logger.info("%d to %s, after the answers before it: %s", status, client, detail)
        self._held_answer = self._error_response(status, error, detail)
        self.flow.pause_reading()
        return False

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


def _parser_said(error: httptools.HttpParserError) -> str:
    # A URL httptools cannot parse (``CONNECT host:443``) fails inside uvicorn's callback: the
    # parser then says only "User callback error", the real words are in the cause.
    cause = error.__context__
    if isinstance(error, httptools.HttpParserCallbackError) and isinstance(
        cause, httptools.HttpParserError
    ):
        error = cause
    return str(error) or "Invalid HTTP request received."
