"""Log lines for people (``--log-format text``) or for log collectors (``--log-format json``).

Both go through the standard :mod:`logging` module, to one handler on the root logger (standard
error), with the redaction filter of :func:`omnihook.store.protect_logging` on it: no registered
secret and no authorization-like value in any line, and one line per record. ``omnihook serve``
and ``omnihook worker`` call :func:`configure_logging`; a server process of your own can too::

    from omnihook.receiver.ops.logs import configure_logging
    configure_logging("info", "json")

In JSON, each record is one object on one line; what the record carries of the event it is about
(passed with ``extra=``, under the names of :data:`CONTEXT_FIELDS`) becomes fields of its own:

>>> import logging
>>> record = logging.LogRecord("omnihook.worker", logging.INFO, __file__, 1,
...                            "handled %s", ("Message",), None)
>>> record.event_id, record.attempt, record.duration = "ev-1", 2, 0.25
>>> record.created, record.msecs = 1767225600.5, 500.0
>>> print(JsonLogFormatter().format(record))  # doctest: +NORMALIZE_WHITESPACE
{"time": "2026-01-01T00:00:00.500Z", "level": "INFO", "logger": "omnihook.worker",
 "message": "handled Message", "event_id": "ev-1", "attempt": 2, "duration": 0.25}

In code that logs about an event::

    logger.info("handled %s", event.type, extra={"event_id": key, "room_id": event.room_id,
                "event_type": event.type, "handler": name, "attempt": n, "duration": seconds})

The text format shows the message only, as it always has; give it what a reader needs to see.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from datetime import timedelta
from typing import Any

from omnihook.store import protect_logging, redact

__all__ = ["CONTEXT_FIELDS", "LOG_FORMATS", "JsonLogFormatter", "configure_logging"]

CONTEXT_FIELDS: tuple[str, ...] = (
    "event_id",
    "room_id",
    "event_type",
    "handler",
    "attempt",
    "duration",
)
"""The ``extra=`` names a record may carry about its event; each becomes a JSON field of the
same name. ``duration`` is in seconds."""

LOG_FORMATS: tuple[str, ...] = ("text", "json")
"""The values of ``--log-format``."""

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# The handler configure_logging installs, found again by this name on a second call.
_HANDLER_NAME = "omnihook"

# A str may hold surrogate code points (bytes decoded with "surrogateescape", JSON with a lone
# "\ud800"); no UTF-8 encoder and not every JSON reader accepts them.
_SURROGATES = re.compile("[\ud800-\udfff]")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601 with milliseconds),
    ``level``, ``logger``, ``message``, the :data:`CONTEXT_FIELDS` the record carries, and
    ``exception`` (the traceback) and ``stack`` when it has them.

    The output is ASCII (other characters as JSON escapes), so it survives any stream encoding;
    surrogate code points are written as the text ``\\udXXX``; values JSON has no form for (an
    object, a NaN) are written as text. Context fields go through
    :func:`~omnihook.store.redact` here; the message and traceback through the redaction filter
    of the handler (:func:`configure_logging` installs it).

    >>> handler = logging.StreamHandler()
    >>> handler.setFormatter(JsonLogFormatter())
    """

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": _text(record.name),
            "message": _text(_message(record)),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = _duration(value) if name == "duration" else _value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = _text(record.exc_text)
        if record.stack_info:
            document["stack"] = _text(self.formatStack(record.stack_info))
        return json.dumps(document, ensure_ascii=True, allow_nan=False, default=_fallback)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log records of ``level`` (``"debug"``, ``"info"``...) and above to standard error, as text
    (``2026-01-01 10:00:00,000 INFO    omnihook.receiver: …``) or as JSON lines
    (:class:`JsonLogFormatter`), through the redaction filter. Uvicorn's records reach the same
    handler when uvicorn runs with ``log_config=None`` (as :func:`omnihook.receiver.http.run_server`
    runs it).

    >>> configure_logging("info", "json")  # doctest: +SKIP

    Calling it again changes the format and level of the same handler (never a second one). Like
    :func:`logging.basicConfig`, it leaves alone a root logger that already has handlers of
    someone else's (a test runner's, an application's), apart from adding the redaction filter.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if ours or not root.handlers:
        handler = ours[0] if ours else logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonLogFormatter() if log_format == "json" else _text_formatter())
        if not ours:
            root.addHandler(handler)
        root.setLevel(level.upper())
    # Every line: no registered secret, no authorization-like value, one line per record
    # (visitor names and messages cannot forge lines), whichever library logs it.
    protect_logging()


def _text_formatter() -> logging.Formatter:
    return logging.Formatter(_TEXT_FORMAT)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:  # wrong arguments for the format: still one JSON line, saying so
        return redact(f"unformattable log message {record.msg!r}: {type(exc).__name__}: {exc}")


def _utc_time(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


def _text(text: str) -> str:
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _value(value: Any) -> Any:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    # Context fields do not pass the redaction filter, which sees the message only.
    return _text(redact(value if isinstance(value, str) else _fallback(value)))


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else str(value)
    return _value(value)


def _fallback(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the line
        return f"<unprintable {type(value).__name__}>"
