"""The stretch of time reconcile looks at: ``--since 24h --until 10m``, or ISO dates.

>>> parse_duration("90m")
5400.0
>>> window("2h", "5m", now=10_000.0)
(2800.0, 9700.0)
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["parse_duration", "parse_moment", "window"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str | float) -> float:
    """Seconds in ``"30s"``, ``"10m"``, ``"24h"``, ``"7d"``, ``"2w"`` or a plain number of
    seconds; raises ``ValueError`` saying the forms it takes."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text}")
        return float(text)
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write 30s, 10m, 24h, 7d or 2w (or seconds)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_moment(text: str, now: float) -> float:
    """A moment: a duration ago (``"24h"``: 24 hours before ``now``) or an ISO date with a time
    zone (``"2026-01-01T00:00:00Z"``); Unix seconds."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration ago (24h, 90m, 7d) nor an ISO date "
            "(2026-01-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset")
    return moment.timestamp()


def window(since: str, until: str | None, now: float) -> tuple[float, float]:
    """``(start, end)`` in Unix seconds; ``until`` defaults to ``now``. Raises ``ValueError``
    when the window is empty or in the future."""
    start = parse_moment(since, now)
    end = parse_moment(until, now) if until is not None else now
    if end <= start:
        raise ValueError(f"the window is empty: --since {since} is not before --until {until}")
    if start > now:
        raise ValueError(f"--since {since} is in the future")
    return start, min(end, now)
