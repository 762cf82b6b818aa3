"""Secrets out of stored error texts and log lines; log lines that visitor text cannot forge.

A CRM or a gateway that echoes the request back puts its ``Authorization`` header into the error
omnihook records; an exception may quote a URL with a password or an ``api_key``. Every error the
store records (events, attempts, outbox) goes through :func:`redact`, and so does every log line
once :func:`protect_logging` is installed (``omnihook serve``, ``worker`` and the other commands
install it). What is masked, with ``***``:

- the value of every secret registered with :func:`register_secret`: the webhook tokens, each
  variable a bridge file names with a ``*_env`` key, CRM credentials and the access tokens they
  yield, the Rocket.Chat auth token, the sender's token (each registers itself where it is read);
- authorization-like values: ``Bearer …``, ``Basic …``, ``Zoho-oauthtoken …``, and the value of
  any header, JSON key or query parameter whose name says token, secret, password, api key,
  authorization, cookie or signature;
- URL credentials (``https://user:***@host``).

>>> register_secret("pat-na1-0123456789")
>>> redact("HTTP 401 from CRM: echo Authorization: Bearer pat-na1-0123456789")
'HTTP 401 from CRM: echo Authorization: ***'

Log lines also get their control characters escaped (:func:`escape_controls`), so that a visitor
named ``"Jane\\n2026-01-01 INFO forged line"`` stays on one line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = [
    "MASK",
    "RedactingLogFilter",
    "escape_controls",
    "protect_logging",
    "redact",
    "redact_error",
    "register_secret",
]

MASK = "***"

_MIN_SECRET = 4  # shorter values are not secrets worth masking everywhere they occur

_CREDENTIAL_CHARS = r"[A-Za-z0-9._~+/=:-]"
_SCHEMES = re.compile(
    # A credential after an authorization scheme: at least 8 characters with a digit, or 20 long
    # (so that "basic validation" or "bearer of bad news" stay as they are).
    rf"(?i)\b(bearer|basic|digest|zoho-oauthtoken|oauth)(\s+)"
    rf"(?:(?={_CREDENTIAL_CHARS}*\d){_CREDENTIAL_CHARS}{{8,}}|{_CREDENTIAL_CHARS}{{20,}})"
)
# Header lines whose whole value is secret, however it is written (``Digest username="u",
# response="…"``, several cookies): masked to the end of the line.
_WHOLE_LINE = re.compile(
    r"(?i)(?<![\w-])((?:proxy-)?authorization|(?:set-)?cookie)(\s*:\s*)(?![\s\"'\[])[^\r\n]+"
)
_QUOTED = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
_SECRET_WORDS = (
    r"token|secret|passw(?:or)?d|passphrase|pwd|api[-_]?key|private[-_]?key|access[-_]?key|"
    r"authorization|cookie|signature|credential"
)
_SCHEME_WORDS = r"bearer|basic|digest|token|zoho-oauthtoken|oauth"
# A name that says "secret" (a header, a JSON key, a form or query parameter; ``SECRET_KEY``,
# ``X-Hub-Signature-256``), then its value. Every pattern here starts only where a name or a
# scheme can start and looks a bounded way ahead, so its cost stays linear in the text
# (visitor text reaches log lines).
_NAMED = re.compile(
    rf"""(?ix)
    (?<![\w.-])
    (?P<name>["']?[\w.-]{{0,64}}?(?:{_SECRET_WORDS})s?(?:[-_.]?(?:key|id|access[-_]?key|\d+)){{0,2}}
        ["']?\s*(?P<sep>[:=])\s*)
    (?:
        (?P<array>\[\s*{_QUOTED}(?:\s*,\s*{_QUOTED})*\s*\])
      | (?P<quoted>{_QUOTED})
      | (?P<scheme>(?:{_SCHEME_WORDS})\s+)[^\s"',;&}}<>]+
      | (?P<bare>[^\s"',;&}}<>\]]+)
    )"""
)
# A cheap look before the patterns below (plain substring tests: a regular expression with
# these alternatives costs more than all the rest): most log lines name no secret at all.
_HINTS = ("token", "secret", "passw", "pwd", "key", "authoriz", "cookie", "signature",
          "credential", "bearer", "basic", "digest", "oauth", "://")  # fmt: skip
# What a bare ``name: value`` may be and still be prose, not a secret: a short word
# ("token: required", "Password: too short") or a small number ("tokens: 3").
_PROSE = re.compile(r"[A-Za-z]{1,12}|\d{1,6}")
_QUERY = re.compile(r"(?i)([?&;](?:key|sig|code|auth|pass|pwd)=)[^&\s#\"'<>]+")
_URL_CREDENTIALS = re.compile(
    # Up to the last "@" of the authority: a password may hold one.
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}://[^/\s:@]{0,256}):[^/\s]*@"
)
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_CONTROLS = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


class _Secrets:
    """The registered values, as one pattern (longest first, so a secret that contains another
    is masked whole)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self.pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | None]) -> None:
        fresh = {v for v in values if v and len(v) >= _MIN_SECRET} - self._values
        if fresh:
            self.restore(frozenset(self._values | fresh))

    def snapshot(self) -> frozenset[str]:
        return frozenset(self._values)

    def restore(self, values: frozenset[str]) -> None:
        """Exactly ``values`` from now on (tests go back to an earlier snapshot, so that one
        test's secrets do not mask another's text)."""
        ordered = sorted(values, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        with self._lock:
            self._values = set(values)
            self.pattern = pattern


_SECRETS = _Secrets()


def register_secret(*values: str | None) -> None:
    """Mask these values wherever :func:`redact` runs from now on (empty and very short values,
    under four characters, are ignored)."""
    _SECRETS.add(values)


def redact_error(text: str | None) -> str | None:
    """:func:`redact` for an error text that may be absent."""
    return redact(text) if text is not None else None


def redact(text: str) -> str:
    """``text`` with every registered secret and every secret-looking value masked."""
    pattern = _SECRETS.pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    lowered = text.lower()
    parameters = "=" in text and ("?" in text or "&" in text or ";" in text)
    if not parameters and not any(hint in lowered for hint in _HINTS):
        return text
    if "://" in text:
        text = _URL_CREDENTIALS.sub(rf"\1:{MASK}@", text)
    text = _WHOLE_LINE.sub(rf"\1\2{MASK}", text)
    text = _SCHEMES.sub(rf"\1\2{MASK}", text)
    text = _NAMED.sub(_mask_named, text)
    return _QUERY.sub(rf"\1{MASK}", text)


def _mask_named(match: re.Match[str]) -> str:
    name = match["name"]
    if match["array"]:  # every element of a list of values
        quote = match["array"].lstrip("[ \t")[0]
        return f"{name}[{quote}{MASK}{quote}]"
    if match["quoted"]:  # a quoted value is a value, whatever it looks like
        quote = match["quoted"][0]
        return f"{name}{quote}{MASK}{quote}"
    if match["scheme"] or match["sep"] == "=":  # name=value is a parameter's value
        return f"{name}{MASK}"
    if _PROSE.fullmatch(match["bare"]):
        return match.group()  # prose: "token: required", "Password: too short", "tokens: 3"
    return f"{name}{MASK}"


def escape_controls(text: str) -> str:
    """Newlines, carriage returns, escapes and other control characters written as ``\\n``,
    ``\\r``, ``\\e``, ``\\x07``: one log record stays one line (tabs are kept)."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_CONTROLS.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class RedactingLogFilter(logging.Filter):
    """A filter for log handlers: the message redacted and kept on one line, tracebacks
    redacted (their own line breaks kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: let the handler report it as usual
            return True
        record.msg = escape_controls(redact(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def protect_logging(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add a :class:`RedactingLogFilter` to ``handlers`` (default: the root logger's), once
    each. Call it after configuring logging in your own server process."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingLogFilter) for f in handler.filters):
            handler.addFilter(RedactingLogFilter())
