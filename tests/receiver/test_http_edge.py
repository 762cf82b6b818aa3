"""The HTTP edge against hostile clients: a real server on a loopback port, raw sockets.

Oversized heads and chunked trailers get 431 (or a close) without slowing anyone else; clients
too slow with their headers or their body get 408 at the deadline, but not for time the server
itself held them up; idle connections close, whatever came before; a body still coming after
its answer, or after a refusal, is dropped up to 1 MiB only; a refused request pipelined behind
others is answered after them; clients that leave answers unread are cut; requests the parser
cannot read get a JSON 400, in one log line; 2,000 idle connections leave room for a normal
request (through ``omnihook serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from omnihook.receiver import Router, create_app
from omnihook.receiver.http import (
    GuardedHttpToolsProtocol,
    HttpLimits,
    files,
    raise_open_file_limit,
    server_config,
)

from ..conftest import UvicornThread, free_port
from ..processes import OmnihookProcess

TOKEN = "edge-token"
FAST = HttpLimits(max_header_bytes=4096, header_timeout=0.5, body_timeout=1.0,
                  body_gap_timeout=0.3, keep_alive_timeout=0.3)  # fmt: skip


def guarded_server(limits: HttpLimits) -> UvicornThread:
    """The receiver's app in uvicorn with the guarded protocol (and uvloop, as ``serve`` runs
    it), in a background thread."""
    app = create_app(Router(), tokens=[TOKEN])
    config = server_config(app, "127.0.0.1", free_port(), limits, log_level="warning")
    return UvicornThread(app, config)


@pytest.fixture
def guarded() -> Iterator[Callable[[HttpLimits], UvicornThread]]:
    running: list[UvicornThread] = []

    def start(limits: HttpLimits) -> UvicornThread:
        running.append(guarded_server(limits).__enter__())
        return running[-1]

    yield start
    for server in running:
        server.__exit__(None, None, None)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as a close)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@contextlib.contextmanager
def trickling(sock: socket.socket, pieces: Iterable[bytes], every: float = 0.05) -> Iterator[None]:
    """Send ``pieces`` one every ``every`` seconds from a thread, while the block runs."""
    stop = threading.Event()

    def trickle() -> None:
        for piece in pieces:
            if stop.wait(every):
                return
            try:
                sock.send(piece)
            except OSError:
                return

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(timeout=5)


def json_error(raw: bytes, status: int) -> dict[str, Any]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    document: dict[str, Any] = json.loads(body)
    assert set(document) == {"error", "detail"}
    return document


def read_response(sock: socket.socket) -> bytes:
    """One answer with a ``Content-Length``, leaving the connection open."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, raw
        raw += chunk
    length = int(parse(raw)[1]["content-length"])
    while len(raw.partition(b"\r\n\r\n")[2]) < length:
        chunk = sock.recv(65536)
        assert chunk, raw
        raw += chunk
    return raw


def split_answers(raw: bytes) -> list[bytes]:
    """Answers one after another, each with a ``Content-Length``."""
    answers = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = int(parse(head)[1]["content-length"])
        answers.append(head + b"\r\n\r\n" + rest[:length])
        raw = rest[length:]
    return answers


def healthz_seconds(port: int) -> float:
    started = time.perf_counter()
    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert response.status_code == 200
    return time.perf_counter() - started


def head_of(size: int, method: str = "GET", path: str = "/healthz", extra: bytes = b"") -> bytes:
    """A request head of exactly ``size`` bytes, padded with one header."""
    start = f"{method} {path} HTTP/1.1\r\nHost: edge\r\n".encode() + extra + b"X-Pad: "
    end = b"\r\n\r\n"
    padding = size - len(start) - len(end)
    assert padding >= 0
    return start + b"p" * padding + end


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the length of the body it read; ``/slow`` waits 1.3 s before it reads (longer
    than the test's body deadlines; uvicorn reads nothing pipelined behind it meanwhile)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.3)
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body, more = body + message.get("body", b""), message.get("more_body", False)
    answer = json.dumps({"got": len(body)}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(answer))]})  # fmt: skip
    await send({"type": "http.response.body", "body": answer})


def echo_server(limits: HttpLimits) -> UvicornThread:
    config = server_config(echo_app, "127.0.0.1", free_port(), limits, log_level="warning",
                           lifespan="off")  # fmt: skip
    return UvicornThread(echo_app, config)


def flood(sock: socket.socket, sent: list[int], up_to: int = 256 << 20) -> threading.Thread:
    """Send bytes as fast as the server takes them, up to ``up_to``, from a thread (started)."""

    def send() -> None:
        chunk = b"a" * (64 << 10)
        try:
            while sent[0] < up_to:
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass  # the server closed

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def wait_until_gone(server: UvicornThread, within: float = 10) -> float:
    """Seconds until the server holds no connection (``within`` at most)."""
    connections = server.server.server_state.connections
    started = time.monotonic()
    while connections and time.monotonic() - started < within:
        time.sleep(0.01)
    return time.monotonic() - started


def edge_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What uvicorn and the edge logged (the app's own loggers left out)."""
    return [f"{record.levelname} {record.getMessage()}" for record in caplog.records
            if record.name.startswith(("uvicorn", "omnihook.receiver.http"))]  # fmt: skip


# Header size


def test_a_head_at_the_limit_is_served_one_byte_more_gets_431(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(max_header_bytes=4096))
    with connect(server.port) as sock:
        sock.sendall(head_of(4096, extra=b"Connection: close\r\n"))
        assert parse(read_until_closed(sock))[0] == 200
    with connect(server.port) as sock:
        sock.sendall(head_of(4097))
        document = json_error(read_until_closed(sock), 431)
    assert document["error"] == "headers_too_large"
    assert "4,096 bytes" in document["detail"]


def test_the_limit_holds_across_reads_and_a_body_in_the_same_read_is_not_counted(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(max_header_bytes=4096))
    with connect(server.port) as sock:  # a head trickled in small reads
        for byte in range(0, 5000, 500):
            sock.sendall(head_of(5000)[byte : byte + 500])
            time.sleep(0.01)
        assert json_error(read_until_closed(sock), 431)["error"] == "headers_too_large"
    body = b"x" * 20_000  # head and a large body in one send: only the head counts
    head = head_of(4000, method="POST", path="/rocketchat",
                   extra=b"Connection: close\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n" % len(body))  # fmt: skip
    with connect(server.port) as sock:
        sock.sendall(head + body)
        assert parse(read_until_closed(sock))[0] == 401  # the app's answer: no token


def test_a_huge_header_is_cut_early_while_healthz_keeps_answering(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(header_timeout=5))
    sent = [0]

    def flood() -> None:
        chunk = b"a" * (1 << 20)
        with connect(server.port) as sock:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Big: ")
                while sent[0] < 256 << 20:  # up to 256 MiB, as in the report
                    sock.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass  # the server stopped reading and closed: what we want

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    slowest = max(healthz_seconds(server.port) for _ in range(20))
    flooder.join(timeout=20)
    assert not flooder.is_alive()
    assert slowest < 1.5  # unguarded: seconds; the margin is for a loaded machine
    assert sent[0] < 64 << 20  # refused long before its end


def test_a_refused_client_that_keeps_sending_is_cut_after_a_mebibyte(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    """After a refusal the server drops what still comes for a second, but no more than 1 MiB."""
    server = guarded(HttpLimits(max_header_bytes=4096))
    sent = [0]
    with connect(server.port) as sock:
        sock.sendall(head_of(5000)[:-4])  # past the limit, never ending
        assert parse(read_response(sock))[0] == 431
        flooder = flood(sock, sent)
        waited = wait_until_gone(server)
        flooder.join(timeout=10)
    assert waited < 0.8  # the second of lingering cut short
    assert sent[0] < 32 << 20


def test_a_refused_connection_leaves_no_timer_behind(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    """The linger and abort timers of a refusal are cancelled when the connection is lost: before,
    they kept the closed protocol (and what it holds) alive for a second or ``send_timeout``."""
    server = guarded(HttpLimits(max_header_bytes=4096, send_timeout=30))
    with connect(server.port) as sock:
        sock.sendall(head_of(5000)[:-4])
        assert parse(read_response(sock))[0] == 431
        (protocol,) = server.server.server_state.connections
        watched = weakref.ref(protocol)
        del protocol
    assert wait_until_gone(server) < 3
    deadline = time.monotonic() + 0.5  # the linger timer would hold it for 1 s
    while watched() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert watched() is None


# Slow clients


def test_a_client_that_sends_nothing_gets_408_at_the_header_deadline(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(FAST)
    with connect(server.port) as sock:
        started = time.monotonic()
        document = json_error(read_until_closed(sock), 408)
        waited = time.monotonic() - started
    assert document["error"] == "request_timeout"
    assert "headers did not arrive within 0.5 s" in document["detail"]
    assert 0.4 < waited < 3


def test_a_trickled_head_is_cut_at_the_deadline_not_kept_alive_by_each_byte(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(FAST)
    head = head_of(400)
    with connect(server.port) as sock:
        started = time.monotonic()
        with trickling(sock, [bytes([byte]) for byte in head[:-4]]):
            raw = read_until_closed(sock)
        waited = time.monotonic() - started
    assert json_error(raw, 408)["error"] == "request_timeout"
    assert 0.4 < waited < 3


def test_a_body_shorter_than_its_content_length_gets_408_after_the_gap(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(FAST)
    with connect(server.port) as sock:
        sock.sendall(b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                     b"X-RocketChat-Livechat-Token: " + TOKEN.encode() + b"\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"type": "Message"')  # fmt: skip
        started = time.monotonic()
        document = json_error(read_until_closed(sock), 408)
        waited = time.monotonic() - started
    assert "no byte of the request body for 0.3 s" in document["detail"]
    assert 0.25 < waited < 3


def test_a_trickled_body_is_cut_at_the_body_deadline(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(body_timeout=1.0, body_gap_timeout=0.6))
    with connect(server.port) as sock:
        sock.sendall(b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                     b"X-RocketChat-Livechat-Token: " + TOKEN.encode() + b"\r\n"
                     b"Content-Length: 1000\r\n\r\n")  # fmt: skip
        started = time.monotonic()
        with trickling(sock, itertools.repeat(b" ")):  # a byte every 0.05 s: never 0.6 s of silence
            raw = read_until_closed(sock)
        waited = time.monotonic() - started
    assert "body did not arrive within 1 s" in json_error(raw, 408)["detail"]
    assert 0.9 < waited < 4


def test_an_answer_given_before_the_body_ended_is_followed_by_a_close_not_a_408(
    guarded: Callable[[HttpLimits], UvicornThread], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omnihook.receiver.http")
    server = guarded(FAST)
    with connect(server.port) as sock:  # no token: the app answers 401 without the body
        sock.sendall(b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"type": "Message"')  # fmt: skip
        started = time.monotonic()
        raw = read_until_closed(sock)
        waited = time.monotonic() - started
    status, _, body = parse(raw)
    assert status == 401
    assert b"HTTP/1.1" not in body  # one answer only
    assert 0.25 < waited < 3
    # None was sent (logged "408 to <client>"; the client's port may hold "408" too).
    assert not [line for line in edge_log(caplog) if line.split(" ", 1)[1].startswith("408 ")]
    assert [line for line in edge_log(caplog) if "(answered already)" in line]


def test_an_idle_keep_alive_connection_closes_without_an_answer(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(FAST)
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
        first = sock.recv(65536)
        assert parse(first)[0] == 200
        started = time.monotonic()
        rest = read_until_closed(sock)
        waited = time.monotonic() - started
    assert rest == b""
    assert 0.2 < waited < 3


def test_the_limits_keep_alive_holds_when_the_protocol_is_named_to_uvicorn() -> None:
    """uvicorn's ``timeout_keep_alive`` (60 s here) is not the protocol's: its limits are."""
    app = create_app(Router(), tokens=[TOKEN])
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                            http=GuardedHttpToolsProtocol.with_limits(FAST), timeout_keep_alive=60)  # fmt: skip
    with UvicornThread(app, config) as server, connect(server.port) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
        assert parse(read_response(sock))[0] == 200
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < 3


def test_keep_alive_requests_each_get_their_own_head_deadline(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(header_timeout=0.5, keep_alive_timeout=5))
    with connect(server.port) as sock:
        for _ in range(4):  # together longer than one header deadline
            time.sleep(0.2)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
            assert parse(sock.recv(65536))[0] == 200


def test_the_protocol_is_usable_by_name_in_uvicorn() -> None:
    config = uvicorn.Config(
        create_app(Router(), tokens=[TOKEN]),
        http="omnihook.receiver.http:GuardedHttpToolsProtocol",
    )
    config.load()
    assert config.http_protocol_class is GuardedHttpToolsProtocol
    limited = GuardedHttpToolsProtocol.with_limits(FAST)
    assert issubclass(limited, GuardedHttpToolsProtocol)
    assert limited.limits is FAST
    assert GuardedHttpToolsProtocol.limits == HttpLimits()


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="header_timeout"):
        HttpLimits(header_timeout=0)
    with pytest.raises(ValueError, match="max_header_bytes"):
        HttpLimits(max_header_bytes=0)


def test_a_connection_answered_before_its_body_ended_closes_once_idle(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(FAST)
    heads = [b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nX-RocketChat-Livechat-Token: wrong\r\n"
             b"Content-Type: application/json\r\nContent-Length: 5\r\n\r\n",  # 401 before the body
             b"GET /healthz HTTP/1.1\r\nHost: edge\r\nContent-Length: 5\r\n\r\n"]  # fmt: skip
    for head in heads:
        with connect(server.port) as sock:
            sock.settimeout(5)
            sock.sendall(head)
            assert parse(read_response(sock))[0] in (200, 401)
            sock.sendall(b"{}   ")  # the body completes after the answer: the connection is idle
            started = time.monotonic()
            rest = read_until_closed(sock)
            waited = time.monotonic() - started
        assert rest == b""
        assert waited < 3  # keep-alive of 0.3 s; before, never closed


EARLY_ANSWERED = {
    "content-length": b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1073741824\r\n\r\n",  # 1 GiB declared, no token
    "chunked": b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n40000000\r\n",  # a 1 GiB chunk, no token
}  # fmt: skip


@pytest.mark.parametrize("framing", EARLY_ANSWERED)
def test_a_body_left_after_an_early_answer_is_dropped_only_up_to_a_mebibyte(
    guarded: Callable[[HttpLimits], UvicornThread], framing: str
) -> None:
    """Before, the server read and dropped the rest of the body until the body deadline."""
    server = guarded(HttpLimits(body_timeout=30, body_gap_timeout=10))
    sent = [0]
    with connect(server.port) as sock:
        sock.settimeout(5)
        sock.sendall(EARLY_ANSWERED[framing])
        assert parse(read_response(sock))[0] in (401, 413)  # the app's answer, before the body
        flooder = flood(sock, sent)
        waited = wait_until_gone(server)
        flooder.join(timeout=10)
    assert waited < 3
    assert not flooder.is_alive()
    assert sent[0] < 64 << 20  # a mebibyte, what the buffers between took, and no more


def test_a_body_left_after_an_early_answer_within_the_budget_keeps_the_connection(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(body_timeout=30, body_gap_timeout=10))
    body = b" " * (512 << 10)
    with connect(server.port) as sock:
        sock.settimeout(5)
        sock.sendall(b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
        assert parse(read_response(sock))[0] == 401
        sock.sendall(body + b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
        assert parse(read_response(sock))[0] == 200


def test_a_pipelined_request_gets_its_whole_body_time_once_the_server_reads_it(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    """The body clock of a request queued behind a slow answer stops while uvicorn does not read."""

    server = echo_server(HttpLimits(body_timeout=1.0, body_gap_timeout=0.5))
    with server, connect(server.port) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: edge\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: edge\r\nContent-Length: 10\r\n\r\n01234")  # fmt: skip
        assert parse(read_response(sock))[0] == 200
        with trickling(sock, [bytes([byte]) for byte in b"56789"]):  # 0.25 s: well within 1 s
            status, _, body = parse(read_response(sock))
    assert (status, json.loads(body)) == (200, {"got": 10})


PIPELINED_REFUSALS = {
    "bad chunk size": (b"POST /echo HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\n", 400),
    "trailer past the limit": (b"POST /echo HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"0\r\nX-Big: " + b"t" * 10_000, 431),
    "garbled request line": (b"HELLO THERE\r\n\r\n", 400),
    "head past the limit": (head_of(10_000)[:-4], 431),
}  # fmt: skip


@pytest.mark.parametrize("refused", PIPELINED_REFUSALS)
def test_a_refused_pipelined_request_is_answered_after_the_answers_before_it(
    caplog: pytest.LogCaptureFixture, refused: str
) -> None:
    """Before, the refusal went out first (the client took it for the answer to /slow) and the
    late answer to /slow raised "Cannot call write() after write_eof()" in the app, or the
    connection closed under the answers."""
    request, status = PIPELINED_REFUSALS[refused]
    server = echo_server(HttpLimits(max_header_bytes=4096, header_timeout=0.5, body_timeout=1.0,
                                    body_gap_timeout=0.5))  # fmt: skip
    with server, connect(server.port) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: edge\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: edge\r\nContent-Length: 3\r\n\r\nabc" + request)  # fmt: skip
        first, second, refusal = split_answers(read_until_closed(sock))
    assert (parse(first)[0], json.loads(parse(first)[2])) == (200, {"got": 0})
    assert (parse(second)[0], json.loads(parse(second)[2])) == (200, {"got": 3})
    json_error(refusal, status)
    assert not [line for line in edge_log(caplog) if line.startswith(("ERROR", "CRITICAL"))]


def test_a_client_waiting_for_100_continue_has_its_body_time_once_told_to_go_on() -> None:
    """The body clocks stop until the app asks for the body (and "100 Continue" goes out)."""
    server = echo_server(HttpLimits(body_timeout=1.0, body_gap_timeout=0.5))
    with server, connect(server.port) as sock:
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: edge\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 10\r\n\r\n")  # fmt: skip
        started = time.monotonic()
        interim = sock.recv(65536)
        waited = time.monotonic() - started
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim  # not a 408 at 0.5 s
        sock.sendall(b"0123456789")
        status, _, body = parse(read_response(sock))
    assert (status, json.loads(body)) == (200, {"got": 10})
    assert waited > 1.2


async def big_answers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/once``: 16 MiB in one piece; ``/stream``: pieces of 64 KiB until the client is gone."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})  # fmt: skip
    if scope["path"] == "/once":
        await send({"type": "http.response.body", "body": b"x" * (16 << 20)})
        return
    for _ in range(1 << 12):  # 256 MiB at most
        await send({"type": "http.response.body", "body": b"x" * (64 << 10), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("path", ["/once", "/stream"])
def test_a_client_that_leaves_its_answer_unread_is_cut(path: str) -> None:
    limits = HttpLimits(keep_alive_timeout=0.3, send_timeout=0.5)
    config = server_config(big_answers, "127.0.0.1", free_port(), limits, log_level="warning",
                           lifespan="off")  # fmt: skip
    with UvicornThread(big_answers, config) as server, socket.socket() as sock:
        connections = server.server.server_state.connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n".encode())  # and never reads
        deadline = time.monotonic() + 10
        while not connections and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        while connections and time.monotonic() < deadline:
            time.sleep(0.05)
        waited, remaining = time.monotonic() - started, len(connections)
    assert remaining == 0  # before, held until the client reads, which it never does
    assert waited < 5


# Chunked bodies


def chunked_head(token: str) -> bytes:
    return (b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
            b"X-RocketChat-Livechat-Token: " + token.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip


def flood_trailer(sock: socket.socket, sent: list[int]) -> None:
    """A trailer header that never ends, up to 64 MiB."""
    chunk = b"a" * (64 << 10)
    try:
        sock.sendall(b"0\r\nX-Big: ")
        while sent[0] < 64 << 20:
            sock.sendall(chunk)
            sent[0] += len(chunk)
    except OSError:
        pass  # the server closed: what we want


def test_a_trailer_past_the_header_limit_gets_431(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(max_header_bytes=4096, body_timeout=30, body_gap_timeout=10))
    sent = [0]
    with connect(server.port) as sock:
        sock.settimeout(5)
        sock.sendall(chunked_head(TOKEN) + b"1\r\n{\r\n")  # the app waits for the rest
        flooder = threading.Thread(target=flood_trailer, args=(sock, sent), daemon=True)
        started = time.monotonic()
        flooder.start()
        document = json_error(read_until_closed(sock), 431)
        waited = time.monotonic() - started
        flooder.join(timeout=10)
    assert document["error"] == "headers_too_large"
    assert "4,096 bytes" in document["detail"]
    assert waited < 3  # before, nothing until the body deadline (30 s)
    assert sent[0] < 16 << 20


def test_a_trailer_flood_after_an_answer_is_closed(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(max_header_bytes=4096, body_timeout=30, body_gap_timeout=10))
    sent = [0]
    with connect(server.port) as sock:
        sock.settimeout(5)
        sock.sendall(chunked_head("wrong"))
        assert parse(read_response(sock))[0] == 401  # answered before the body
        flooder = threading.Thread(target=flood_trailer, args=(sock, sent), daemon=True)
        started = time.monotonic()
        flooder.start()
        rest = read_until_closed(sock)
        waited = time.monotonic() - started
        flooder.join(timeout=10)
    assert rest == b""  # one answer only
    assert waited < 3
    assert sent[0] < 16 << 20


def test_many_tiny_chunks_and_a_small_trailer_are_not_refused(
    guarded: Callable[[HttpLimits], UvicornThread],
) -> None:
    server = guarded(HttpLimits(max_header_bytes=4096))
    body = b"{" + b" " * 3000 + b"}"  # 5 bytes of framing per byte of body: 15 KB in all
    framed = b"".join(b"1\r\n%c\r\n" % byte for byte in body)
    with connect(server.port) as sock:
        sock.sendall(chunked_head(TOKEN) + framed + b"0\r\nX-Trailer: " + b"t" * 3000 + b"\r\n\r\n")
        status, headers, _ = parse(read_response(sock))
    assert status in (400, 422)  # the app's answer to an empty object, after the whole body
    assert headers["content-type"] == "application/json"


# Malformed requests


@pytest.mark.parametrize(
    ("head", "detail"),
    [
        (b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Length: 12a\r\n\r\n",
         "Invalid character in Content-Length"),
        (b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
         "Duplicate Content-Length"),
        (b"POST /rocketchat HTTP/1.1\r\nHost: edge\r\nContent-Length: 2\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding can't be present with Content-Length"),
        (b"HELLO THERE\r\n\r\n", "Invalid method encountered"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "Invalid method encountered"),  # TLS
        (b"CONNECT edge:443 HTTP/1.1\r\nHost: edge:443\r\n\r\n", "invalid url b'edge:443'"),
    ],
)  # fmt: skip
def test_a_malformed_request_gets_a_json_400_and_one_log_line(
    guarded: Callable[[HttpLimits], UvicornThread],
    caplog: pytest.LogCaptureFixture,
    head: bytes,
    detail: str,
) -> None:
    caplog.set_level(logging.INFO, logger="omnihook.receiver.http")
    server = guarded(FAST)
    with connect(server.port) as sock:
        client = "{}:{}".format(*sock.getsockname())
        sock.sendall(head)
        document = json_error(read_until_closed(sock), 400)
    assert document == {"error": "bad_request", "detail": detail}
    assert edge_log(caplog) == [f"INFO 400 to {client}: {detail}"]  # before, uvicorn's warning too


# Upgrades


def test_an_upgrade_request_is_answered_over_http_and_the_connection_closes(
    guarded: Callable[[HttpLimits], UvicornThread], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="omnihook.receiver.http")
    server = guarded(FAST)
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")  # fmt: skip
        started = time.monotonic()
        status, headers, body = parse(read_until_closed(sock))
        waited = time.monotonic() - started
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["connection"] == "close"  # the parser cannot read another request after it
    assert waited < 3
    lines = edge_log(caplog)  # before, two warnings, one saying to install websockets
    assert len(lines) == 1
    assert lines[0].startswith("DEBUG "), lines


def test_websockets_are_off_unless_asked_for() -> None:
    app = create_app(Router(), tokens=[TOKEN])
    assert server_config(app, "127.0.0.1", 8000).ws == "none"
    assert server_config(app, "127.0.0.1", 8000, ws="wsproto").ws == "wsproto"


# The open-file limit


def test_an_unlimited_open_file_limit_is_never_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = pytest.importorskip("resource")
    unlimited = resource.RLIM_INFINITY
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (unlimited, unlimited))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: asked.append(limits))
    assert raise_open_file_limit() == unlimited
    assert asked == []


@pytest.mark.parametrize(("nr_open", "granted"), [("65536\n", 65536), (None, 65536)])
def test_an_unlimited_hard_limit_falls_back_to_what_the_system_grants(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nr_open: str | None, granted: int
) -> None:
    resource = pytest.importorskip("resource")
    unlimited = resource.RLIM_INFINITY
    asked: list[int] = []

    def setrlimit(_: int, limits: tuple[int, int]) -> None:
        asked.append(limits[0])
        if limits[0] > 100_000:  # fs.nr_open of 100,000, say
            raise ValueError("not allowed to raise maximum limit")

    nr_open_file = tmp_path / "nr_open"
    if nr_open is not None:
        nr_open_file.write_text(nr_open)
    monkeypatch.setattr(files, "_NR_OPEN", nr_open_file)
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, unlimited))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert raise_open_file_limit() == granted
    assert asked[-1] == granted
    if nr_open is not None:
        assert asked == [65536]  # the system's own cap first


# Through `omnihook serve`

IDLE_CONNECTIONS = 2000


def _low_file_limit() -> None:
    """In the child before ``omnihook serve`` starts: a soft open-file limit of 1,024 (Linux's
    usual), which the server must raise itself."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def test_serve_keeps_answering_beside_2000_idle_connections(tmp_path: Path) -> None:
    resource = pytest.importorskip("resource")
    raise_open_file_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE_CONNECTIONS + 200
    if soft < needed:
        pytest.skip(f"this test process may open {soft} files (hard limit {hard}); needs {needed}")
    if hard < needed:
        pytest.skip(f"the server's hard open-file limit is {hard}; {needed} needed")
    port = free_port()
    serve = OmnihookProcess(
        ["serve", "--port", str(port), "--no-store", "--max-header-bytes", "2048",
         "--header-timeout", "60", "--keep-alive-timeout", "60"],
        tmp_path, {"OMNIHOOK_TOKEN": TOKEN}, port, preexec_fn=_low_file_limit,
    )  # fmt: skip
    serve.start()
    idle: list[socket.socket] = []
    try:
        for number in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if number % 2:
                sock.sendall(b"POST /rocketchat HTTP/1.1\r\nHost: ed")  # a head that stalls
            idle.append(sock)
        time.sleep(0.5)  # let the server accept them all
        assert healthz_seconds(port) < 2
        response = httpx.post(f"http://127.0.0.1:{port}/rocketchat", content=b"{}",
                              headers={"X-RocketChat-Livechat-Token": TOKEN}, timeout=10)  # fmt: skip
        assert response.status_code in (400, 422)  # the app answered: not a 5xx, not a hang
        with connect(port) as sock:  # the flags reach the protocol
            sock.sendall(head_of(4000))
            assert json_error(read_until_closed(sock), 431)["error"] == "headers_too_large"
    finally:
        for sock in idle:
            sock.close()
        serve.stop()
    output = serve.output()
    assert "open-file limit raised from 1,024" in output, output
    assert "HTTP limits: headers ≤ 2,048 bytes within 60 s" in output, output


def test_inspect_runs_behind_the_same_edge(tmp_path: Path) -> None:
    port = free_port()
    inspect = OmnihookProcess(["inspect", "--port", str(port), "--header-timeout", "0.5"],
                              tmp_path, {}, port).start()  # fmt: skip
    try:
        with connect(port) as sock:
            started = time.monotonic()
            assert json_error(read_until_closed(sock), 408)["error"] == "request_timeout"
            assert time.monotonic() - started < 3
    finally:
        inspect.stop()
