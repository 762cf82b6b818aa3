"""``--log-format json``: one JSON object per line, every field escaped, never a secret."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.receiver.cli import serve, worker
from omnihook.receiver.ops.logs import (
    CONTEXT_FIELDS,
    LOG_FORMATS,
    JsonLogFormatter,
    configure_logging,
)
from omnihook.store import RedactingLogFilter, register_secret

from ..conftest import free_port
from ..processes import OmnihookProcess, wait_for

BASE_FIELDS = {"time", "level", "logger", "message"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    omnihook\.test\.text: hello")


@contextmanager
def json_logger(*, redacting: bool = True) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON lines to a buffer (through the redaction filter, as
    :func:`configure_logging` sets it up, unless told otherwise)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    if redacting:
        handler.addFilter(RedactingLogFilter())
    # A new logger each time: pytest hooks its own capture onto the non-propagating loggers
    # that exist when a test starts.
    log = logging.getLogger(f"omnihook.test.json.{uuid.uuid4().hex}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield log, stream
    finally:
        log.removeHandler(handler)
        log.propagate = True


def one_line(stream: io.StringIO) -> dict[str, Any]:
    text = stream.getvalue()
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert len(lines) == 1, text
    (line,) = lines
    assert line.isascii()
    assert "\r" not in line
    document = json.loads(line)
    assert isinstance(document, dict)
    return document


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without the test runner's handlers (as a fresh process has it), put back
    afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = handlers
        root.setLevel(level)


def test_context_fields_are_the_documented_names() -> None:
    assert CONTEXT_FIELDS == (
        "event_id",
        "room_id",
        "event_type",
        "handler",
        "attempt",
        "duration",
    )
    assert LOG_FORMATS == ("text", "json")


def test_a_record_with_its_event_context() -> None:
    context = {
        "event_id": "ev-42",
        "room_id": "room-7",
        "event_type": "LivechatSession",
        "handler": "sync_crm",
        "attempt": 3,
        "duration": 2,
    }
    before = datetime.now(UTC)
    with json_logger() as (log, stream):
        log.warning("handled %s in %d ms", "LivechatSession", 2000, extra=context)
    after = datetime.now(UTC)
    document = one_line(stream)
    assert list(document)[:4] == ["time", "level", "logger", "message"]
    assert set(document) == BASE_FIELDS | set(CONTEXT_FIELDS)
    assert TIME.fullmatch(document["time"])
    stamp = datetime.fromisoformat(document["time"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= stamp <= after
    assert document["level"] == "WARNING"
    assert document["logger"] == log.name
    assert document["message"] == "handled LivechatSession in 2000 ms"
    assert {k: document[k] for k in CONTEXT_FIELDS} == {**context, "duration": 2.0}
    assert isinstance(document["duration"], float)
    assert isinstance(document["attempt"], int)


def test_a_record_without_context_has_the_base_fields_only() -> None:
    with json_logger() as (log, stream):
        log.info("started")
    assert one_line(stream).keys() == BASE_FIELDS


def test_some_context_fields_only() -> None:
    with json_logger() as (log, stream):
        log.info("stored", extra={"event_id": "ev-1", "room_id": None, "unrelated": "x"})
    document = one_line(stream)
    assert set(document) == BASE_FIELDS | {"event_id"}


def test_values_json_has_no_form_for_become_text() -> None:
    class Handler:
        def __str__(self) -> str:
            return "crm.sync<Handler>"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    extra = {
        "handler": Handler(),
        "event_id": Broken(),
        "attempt": float("nan"),
        "duration": timedelta(milliseconds=1500),
        "room_id": ("r", 1),
    }
    with json_logger() as (log, stream):
        log.info("odd values", extra=extra)
    document = one_line(stream)
    assert document["handler"] == "crm.sync<Handler>"
    assert document["event_id"] == "<unprintable Broken>"
    assert document["attempt"] == "nan"
    assert document["duration"] == 1.5
    assert document["room_id"] == "('r', 1)"


@pytest.mark.parametrize("redacting", [True, False], ids=["filtered", "formatter-alone"])
def test_odd_text_stays_one_valid_line(redacting: bool) -> None:
    text = 'Jane "J" O\'Brien\n2026-01-01 INFO forged\r\x1b[31m \\ \t\u2028\u2029\x00 \ud800 \udcff 😀 ü'
    with json_logger(redacting=redacting) as (log, stream):
        log.info("visitor %s", text, extra={"room_id": "r\n\ud83d", "handler": 'a"b'})
    document = one_line(stream)
    stream.getvalue().encode("utf-8")  # no surrogate left for an encoder to choke on
    message = document["message"]
    assert document["room_id"] == "r\n\\ud83d"
    assert document["handler"] == 'a"b'
    assert "\\ud800 \\udcff 😀 ü" in message
    assert 'Jane "J" O\'Brien' in message
    if redacting:  # the filter writes control characters as text, as in the text format
        assert "\n" not in message
        assert message.startswith('visitor Jane "J" O\'Brien\\n2026-01-01 INFO forged\\r\\e[31m')
    else:
        assert message == "visitor " + text.replace("\ud800", "\\ud800").replace(
            "\udcff", "\\udcff"
        )


def test_an_exception_is_one_field_of_one_line() -> None:
    with json_logger() as (log, stream):
        try:
            raise ValueError('bad "value"\nsecond line')
        except ValueError:
            log.exception("handler failed", extra={"attempt": 1})
    document = one_line(stream)
    assert document["message"] == "handler failed"
    assert document["attempt"] == 1
    trace = document["exception"]
    assert trace.startswith("Traceback (most recent call last):\n")
    assert 'ValueError: bad "value"\nsecond line' in trace


def test_a_stack_is_kept_too() -> None:
    with json_logger() as (log, stream):
        log.info("where", stack_info=True)
    assert one_line(stream)["stack"].startswith("Stack (most recent call last):\n")


def test_a_broken_format_is_still_one_json_line() -> None:
    with json_logger() as (log, stream):
        log.info("%d items", "three")
    assert one_line(stream)["message"].startswith("unformattable log message '%d items'")


def test_secrets_never_reach_a_line() -> None:
    secret = "tok-Secr3t-0123456789"
    register_secret(secret)
    with json_logger() as (log, stream):
        try:
            raise RuntimeError(f"CRM said: invalid token {secret}")
        except RuntimeError:
            log.exception(
                "posting with %s failed; Authorization: Bearer abcdefgh12345678",
                secret,
                extra={"event_id": f"ev-{secret}", "handler": f"h {secret}", "room_id": "r1"},
            )
    line = stream.getvalue()
    document = one_line(stream)
    assert secret not in line
    assert "abcdefgh12345678" not in line
    assert "***" in document["message"]
    assert document["event_id"] == "ev-***"
    assert document["handler"] == "h ***"
    assert document["room_id"] == "r1"
    assert "RuntimeError: CRM said: invalid token ***" in document["exception"]


def test_configure_logging_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    with bare_root() as root:
        configure_logging("info")
        configure_logging("info")
        assert len(root.handlers) == 1
        logging.getLogger("omnihook.test.text").info("hello")
        logging.getLogger("omnihook.test.text").debug("not at info")
        text = capsys.readouterr().err
        assert TEXT_LINE.fullmatch(text.rstrip("\n")), text

        configure_logging("debug", "json")
        assert len(root.handlers) == 1
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonLogFormatter)
        assert sum(isinstance(f, RedactingLogFilter) for f in handler.filters) == 1
        assert root.level == logging.DEBUG
        register_secret("configured-secret-1234")
        logging.getLogger("omnihook.test.json").debug("a\nb configured-secret-1234")
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1
        document = json.loads(lines[0])
        assert document["message"] == "a\\nb ***"
        assert document["level"] == "DEBUG"


def test_configure_logging_leaves_someone_elses_handler_alone() -> None:
    with bare_root() as root:
        theirs = logging.StreamHandler(io.StringIO())
        root.addHandler(theirs)
        configure_logging("info", "json")
        assert root.handlers == [theirs]
        assert not isinstance(theirs.formatter, JsonLogFormatter)
        assert any(isinstance(f, RedactingLogFilter) for f in theirs.filters)


def test_configure_logging_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("info", "xml")


@pytest.mark.parametrize("command", [serve, worker], ids=["serve", "worker"])
def test_every_command_with_a_log_level_takes_a_log_format(command: Any) -> None:
    runner = CliRunner()
    shown = runner.invoke(command, ["--help"])
    assert shown.exit_code == 0
    assert re.search(r"--log-format \[text\|json\].*\[default: text\]", shown.output, re.S)
    refused = runner.invoke(command, ["--log-format", "xml"])
    assert refused.exit_code == 2
    assert "'xml' is not one of 'text', 'json'" in refused.output


def test_serve_writes_json_lines_only(tmp_path: Path) -> None:
    token = "json-logs-token-5f3a9c"
    port = free_port()
    store = f"sqlite:///{tmp_path / 'omnihook.db'}"
    server = OmnihookProcess(
        ["serve", "--port", str(port), "--store", store, "--log-format", "json", "--access-log"],
        cwd=tmp_path,
        env={"OMNIHOOK_TOKEN": token},
        port=port,
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        close = samples.sample("chat-close")
        answer = httpx.post(f"{base}/rocketchat", json=close, headers={TOKEN_HEADER: token})
        assert answer.status_code == 200, answer.text
        # A request whose path holds the token: uvicorn's access line must not show it.
        assert httpx.get(f"{base}/nowhere/{token}").status_code == 404
        wait_for(lambda: '"omnihook.events"' in server.output(), 20, "the event to be handled")
    finally:
        server.stop()
    output = server.output()
    assert token not in output
    lines = output.splitlines()
    documents = [json.loads(line) for line in lines]
    for line, document in zip(lines, documents, strict=True):
        assert isinstance(document, dict), line
        assert document.keys() >= BASE_FIELDS, line
        assert TIME.fullmatch(document["time"]), line
    by_logger: dict[str, list[str]] = {}
    for document in documents:
        by_logger.setdefault(document["logger"], []).append(document["message"])
    assert any(m.startswith("Uvicorn running on") for m in by_logger["uvicorn.error"])
    assert any(m.startswith("Finished server process") for m in by_logger["uvicorn.error"])
    access = by_logger["uvicorn.access"]
    assert any('"POST /rocketchat HTTP/1.1" 200' in m for m in access)
    assert any('"GET /nowhere/*** HTTP/1.1" 404' in m for m in access)
    assert any(m.startswith("accepting 1 token(s)") for m in by_logger["omnihook.receiver"])
    assert by_logger["omnihook.events"], output


async def test_handling_lines_carry_the_event_the_handler_and_the_attempt(tmp_path: Path) -> None:
    """A failing handler and the dead letter that follows, as JSON lines with their ids."""
    from omnihook.receiver import HandlerContext, HandlingPolicy, Router, Worker, create_app
    from omnihook.store import Store

    router = Router()

    @router.on("LivechatSession")
    async def archive(event: Any, context: HandlerContext) -> None:
        raise RuntimeError("archive is down")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    loggers = [logging.getLogger(name) for name in ("omnihook.receiver", "omnihook.worker")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        async with Store.open(f"sqlite:///{tmp_path / 'omnihook.db'}") as store:
            app = create_app(router, tokens=["t"], store=store, run_worker=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                document = samples.sample("chat-close")
                answer = await client.post(
                    "/rocketchat", json=document, headers={TOKEN_HEADER: "t"}
                )
                assert answer.status_code == 200
            await Worker(store, router, policy=HandlingPolicy(attempts=1)).drain()
            [event] = await store.events.find(limit=1)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = next(line for line in lines if line["message"].startswith("handler "))
    dead = next(line for line in lines if "dead-lettered" in line["message"])
    for line in (failed, dead):
        assert line["event_id"] == event.id
        assert line["room_id"] == document["_id"]
        assert line["event_type"] == "LivechatSession"
        assert line["attempt"] == 1
        assert line["duration"] >= 0
    assert failed["handler"].endswith("archive")
    assert "RuntimeError: archive is down" in failed["exception"]
    assert dead["level"] == "WARNING"
