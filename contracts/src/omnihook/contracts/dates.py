"""Rocket.Chat's date form on the wire: ISO-8601 UTC with milliseconds and ``Z``.

Rocket.Chat serialises JavaScript ``Date`` objects with ``JSON.stringify``, which always gives
``2025-01-01T10:00:00.000Z``. We accept any ISO-8601 string that carries a time zone (so older or
hand-written payloads still parse) but reject numbers and naive times, and we always write dates
back in Rocket.Chat's exact form so that a parsed payload dumps to the same document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer, Strict, WithJsonSchema

__all__ = ["RocketChatDate", "format_date", "utc_now"]


def format_date(value: datetime) -> str:
    """Format ``value`` as Rocket.Chat does: ``2025-01-01T10:00:00.000Z`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """The current time in UTC, truncated to milliseconds as JavaScript keeps it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


RocketChatDate = Annotated[
    AwareDatetime,
    # Strict: on JSON input only strings are dates (no Unix numbers), as Rocket.Chat only sends strings.
    Strict(),
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
