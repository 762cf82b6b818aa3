"""Rocket.Chat's date form on the wire: ISO-8601 UTC with milliseconds and ``Z``.

Rocket.Chat serialises JavaScript ``Date`` objects with ``JSON.stringify``, which always gives
``2025-01-01T10:00:00.000Z``. We accept any ISO-8601 string that carries a time zone (so older or
hand-written payloads still parse) but reject numbers and naive times, and we always write dates
back in Rocket.Chat's exact form so that a parsed payload dumps to the same document.

A date must also fall within what UTC can hold (years 1 to 9999 once converted to UTC):
``0001-01-01T00:00:00+01:00`` is a valid ISO-8601 string, but it is 31 December of year 0 in
UTC, which neither Python nor Rocket.Chat's form can write. Such a date breaks the contract at its
field ("date out of range"), instead of being accepted and failing later in ``to_dict()``,
``to_json()`` or ``transcript()``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, PlainSerializer, Strict, WithJsonSchema

__all__ = ["RocketChatDate", "format_date", "utc_now"]


def format_date(value: datetime) -> str:
    """Format ``value`` as Rocket.Chat does: ``2025-01-01T10:00:00.000Z`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # The year by hand: strftime writes year 1 as "1", not "0001".
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """The current time in UTC, truncated to milliseconds as JavaScript keeps it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

RocketChatDate = Annotated[
    AwareDatetime,
    # Strict: on JSON input only strings are dates (no Unix numbers), as Rocket.Chat only sends strings.
    Strict(),
    # Within what UTC can hold. A bound, not a Python validator: pydantic-core compares in Rust
    # (offsets included), which costs next to nothing per date on the fast path.
    Field(ge=_EARLIEST, le=_LATEST),
    PlainSerializer(format_date, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO-8601 UTC date as Rocket.Chat writes it",
            "examples": ["2025-01-01T10:00:00.000Z"],
        }
    ),
]
"""A date field of a Rocket.Chat payload (see the module docstring)."""
