"""``check_payload``: everything a tool checking a sender or a live Rocket.Chat wants to know about
one payload: does it parse, is every date in Rocket.Chat's exact form, which fields or type does
this version of the contracts not know."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import AnyEvent, UnknownEvent
from .parsing import ContractError, Problem, format_path, parse_event, unknown_fields

__all__ = ["PayloadCheck", "check_payload"]

_RC_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# Where dates sit on the wire; a tuple is a path, "*" any list index.
_DATE_PATHS: tuple[tuple[str, ...], ...] = (
    ("createdAt",),
    ("lastMessageAt",),
    ("closedAt",),
    ("sentAt",),
    ("servedBy", "ts"),
    ("oldServedBy", "ts"),
    ("messages", "*", "ts"),
    ("messages", "*", "editedAt"),
    ("messages", "*", "_updatedAt"),
)


@dataclass(frozen=True)
class PayloadCheck:
    """The verdict on one payload."""

    event: AnyEvent | None
    """The parsed event, or ``None`` when it does not parse."""
    error: ContractError | None
    """Why it does not parse."""
    problems: tuple[Problem, ...] = ()
    """Everything that breaks Rocket.Chat's contract (parse problems, date forms)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What is accepted but worth a look: unknown fields, an unknown type."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """Each problem, then each note, one per line."""
        return [str(problem) for problem in self.problems] + [
            f"note: {note}" for note in self.notes
        ]


def check_payload(data: bytes | bytearray | str | Mapping[str, Any]) -> PayloadCheck:
    """Check one payload strictly against Rocket.Chat's contract.

    Beyond :func:`parse_event` (which accepts any ISO date with a time zone), every date must be
    in Rocket.Chat's own form, ``2025-01-01T10:00:00.000Z``.
    """
    try:
        event = parse_event(data)
    except ContractError as exc:
        problems = list(exc.problems)
        if exc.reason == "contract":  # an object: its dates can still be checked
            raw = data if isinstance(data, Mapping) else json.loads(data)
            seen = {problem.path for problem in problems}
            problems += [p for p in _date_problems(raw) if p.path not in seen]
        return PayloadCheck(None, exc, tuple(problems))
    if isinstance(event, UnknownEvent):
        return PayloadCheck(
            event, None, (), (f"unknown event type {event.type!r} (a newer Rocket.Chat?)",)
        )
    raw = data if isinstance(data, Mapping) else json.loads(data)  # it parsed, so it is JSON
    notes = tuple(f"unknown field {path}" for path in unknown_fields(event))
    return PayloadCheck(event, None, tuple(_date_problems(raw)), notes)


def _date_problems(document: Mapping[str, Any]) -> Iterator[Problem]:
    for path in _DATE_PATHS:
        for loc, value in _values_at(document, path, ()):
            if isinstance(value, str) and not _RC_DATE.match(value):
                yield Problem(
                    format_path(loc),
                    f"not a Rocket.Chat date: expected the form 2025-01-01T10:00:00.000Z, got {value!r}",
                )


def _values_at(
    node: Any, path: tuple[str, ...], loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], Any]]:
    if not path:
        yield loc, node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _values_at(item, rest, (*loc, index))
    elif isinstance(node, Mapping) and head in node:
        yield from _values_at(node[head], rest, (*loc, head))
