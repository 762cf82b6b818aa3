"""``parse_event``: bytes, text or a mapping in, the right typed payload out, or one clear error.

Two things a payload may hold that JSON allows but the validating parser refuses:

- **Lone surrogates.** JavaScript strings are UTF-16, and ``JSON.stringify`` writes half of a
  surrogate pair as an escape (``"\\ud800"``), say when Rocket.Chat cuts a message in the middle
  of an emoji. Such a document is accepted: in the parsed model every lone surrogate (in keys
  too) becomes U+FFFD, the replacement character, so that every string can be written as UTF-8
  and stored. The raw body is not changed (the receiver keeps it byte for byte). A mapping
  holding lone surrogates is treated the same way.
- **Deep nesting.** A document nested deeper than 200 levels (anywhere: at the top or inside a
  field such as ``customFields``) is refused with a ``ContractError`` (reason ``not_json``,
  "nested deeper than 200 levels"), whatever its depth; never a ``RecursionError``.

Both are handled only once the fast parser has refused the document, so valid payloads pay
nothing for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from . import lenient_json
from .dates import format_date
from .event_type import EventType
from .events import AnyEvent, Event, UnknownEvent
from .lenient_json import TooDeep
from .wire import encode_json

__all__ = ["ContractError", "Problem", "format_path", "parse_event", "unknown_fields"]

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)
# The core validator's own method: `TypeAdapter.validate_json` only checks keyword arguments that
# are not used here before calling it, and that extra Python frame shows on a 1 KB payload.
_VALIDATE_JSON = _EVENT_ADAPTER.validator.validate_json
_KNOWN_TYPES = frozenset(member.value for member in EventType)

# Fields whose type is a union of forms; pydantic reports one error per form, we report one.
_UNION_FIELDS = {
    "email": "expected a list of {address} objects, a string or null",
    "phone": "expected a list of {phoneNumber} objects, a string or null",
}

_MAX_INPUT_REPR = 60

# How jiter words the errors the failure path handles itself (pydantic-core's "Invalid JSON: ...").
_TOO_DEEP = "recursion limit exceeded"
# A high surrogate not followed by a low one, or a low one alone.
_SURROGATE_ERRORS = ("lone leading surrogate", "unexpected end of hex escape")

Reason = Literal["not_json", "not_object", "contract"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a payload: where (``messages[1].ts``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ContractError(ValueError):
    """A payload that is not a valid Rocket.Chat webhook document.

    ``reason`` says how bad it is: ``"not_json"`` (not even JSON), ``"not_object"`` (JSON, but not
    an object) or ``"contract"`` (an object that breaks the contract; ``problems`` has each field
    path and what is wrong with it).
    """

    def __init__(self, reason: Reason, problems: list[Problem], event_type: str | None = None):
        self.reason: Reason = reason
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.event_type = event_type
        super().__init__(self.summary())

    def summary(self) -> str:
        """One readable paragraph: the kind of failure and every problem."""
        head = {
            "not_json": "not JSON",
            "not_object": "not a JSON object",
            "contract": f"not a valid {self.event_type or 'Rocket.Chat'} payload",
        }[self.reason]
        return f"{head}: " + "; ".join(str(problem) for problem in self.problems)


def parse_event(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any],
) -> AnyEvent:
    """Parse one webhook payload into its model.

    Accepts the raw request body (``bytes``/``str``) or an already decoded mapping (whose values
    may include ``datetime`` objects). Returns the model of the payload's ``type``, or an
    :class:`UnknownEvent` keeping every field when the type is not one of the nine known ones.
    Raises :class:`ContractError` otherwise.
    """
    raw: bytes | bytearray | str
    # A request body is exactly bytes (or str): test that first, as `isinstance(data, Mapping)` is
    # an ABC check, slow next to the rest of this function. Neither type can be a Mapping.
    if type(data) is bytes or type(data) is str:
        raw = data
    elif isinstance(data, Mapping):
        raw = _encode_mapping(data)
    elif isinstance(data, memoryview):
        raw = data.tobytes()
    else:
        raw = data
    try:
        event: AnyEvent = _VALIDATE_JSON(raw)
    except ValidationError as exc:
        return _explain_failure(raw, exc)
    return event


def _encode_mapping(data: Mapping[str, Any]) -> bytes:
    # One validation path for every input: the wire's (JSON) rules, where dates must be strings.
    try:
        return encode_json(data)
    except TooDeep as exc:
        raise ContractError("not_json", [Problem("", str(exc))]) from None
    except (TypeError, ValueError) as exc:
        raise ContractError("not_json", [Problem("", f"cannot be written as JSON: {exc}")]) from exc


def _explain_failure(
    raw: bytes | bytearray | str, exc: ValidationError, *, surrogates_replaced: bool = False
) -> AnyEvent:
    """Why the validating parser refused ``raw``, as a ``ContractError``; or the event after all
    (an unknown type, or a document whose only fault was lone surrogates)."""
    errors = exc.errors(include_url=False)
    if errors[0]["type"] == "json_invalid":
        detail = str(errors[0].get("ctx", {}).get("error", errors[0]["msg"]))
        if _TOO_DEEP in detail:
            raise ContractError("not_json", [Problem("", str(TooDeep()))]) from None
        if not surrogates_replaced and any(text in detail for text in _SURROGATE_ERRORS):
            return _parse_with_surrogates_replaced(raw)
        # Python's message says where the JSON breaks; if Python accepts it (NaN, say), jiter's.
        _decode(raw)
        raise ContractError("not_json", [Problem("", errors[0]["msg"])]) from None
    document = _decode(raw)
    if not isinstance(document, dict):
        kind = type(document).__name__ if document is not None else "null"
        problem = Problem("", f"expected a JSON object, got {_json_kind(kind)}")
        raise ContractError("not_object", [problem]) from None
    event_type = document.get("type")
    if "type" not in document:
        raise ContractError("contract", [Problem("type", "required field is missing")]) from None
    if not isinstance(event_type, str):
        problem = Problem("type", f"expected the event type as a string, got {_short(event_type)}")
        raise ContractError("contract", [problem]) from None
    if event_type not in _KNOWN_TYPES:
        return UnknownEvent.model_validate(document)
    problems = list(_problems(errors))
    raise ContractError("contract", problems, event_type) from None


def _decode(raw: bytes | bytearray | str) -> Any:
    """Python's decoding of a refused document; ``ContractError`` when it is not JSON either."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ContractError("not_json", [Problem("", str(TooDeep()))]) from None
    except ValueError as decode_error:  # UnicodeDecodeError included
        raise ContractError("not_json", [Problem("", str(decode_error))]) from None


def _parse_with_surrogates_replaced(raw: bytes | bytearray | str) -> AnyEvent:
    # Python's json accepts lone surrogates; replace them and validate the JSON again (dates are
    # strict, so validating the decoded Python objects instead would refuse every date string).
    try:
        cleaned = lenient_json.dumps(lenient_json.loads(raw))
    except ValueError as decode_error:  # not JSON after all (the surrogate was not the only fault)
        raise ContractError("not_json", [Problem("", str(decode_error))]) from None
    try:
        event: AnyEvent = _VALIDATE_JSON(cleaned)
    except ValidationError as exc:
        return _explain_failure(cleaned, exc, surrogates_replaced=True)
    return event


def _json_kind(python_kind: str) -> str:
    return {
        "list": "an array",
        "str": "a string",
        "int": "a number",
        "float": "a number",
        "bool": "a boolean",
    }.get(python_kind, python_kind)


def _problems(errors: list[ErrorDetails]) -> Iterator[Problem]:
    seen: set[str] = set()
    for error in errors:
        loc = list(error["loc"][1:])  # the first element is the union tag (the event type)
        message = _message(error)
        for index in range(1, len(loc)):
            if loc[index - 1] in _UNION_FIELDS and isinstance(loc[index], str):
                message = f"{_UNION_FIELDS[str(loc[index - 1])]}, got {_short(error['input'])}"
                loc = loc[:index]
                break
        path = format_path(loc)
        if path in seen:
            continue
        seen.add(path)
        yield Problem(path, message)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind.startswith(("datetime", "timezone")):
        return (
            "not a Rocket.Chat date (expected an ISO-8601 UTC string such as "
            f"2025-01-01T10:00:00.000Z), got {_short(given)}"
        )
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = _date_bound(error)
        if bound is not None:  # a RocketChatDate outside what UTC can hold
            side = "before the earliest" if kind == "greater_than_equal" else "after the latest"
            return f"date out of range: {given} is {side} date UTC can hold ({format_date(bound)})"
    if kind == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_short(given)}"
    text = error["msg"]
    text = text[0].lower() + text[1:]
    return f"{text}, got {_short(given)}"


def _date_bound(error: ErrorDetails) -> datetime | None:
    """The date a ``ge``/``le`` error names as its bound (pydantic reports it as text), if any."""
    ctx = error.get("ctx") or {}
    bound = ctx.get("ge", ctx.get("le"))
    if isinstance(bound, datetime):
        return bound
    try:
        return datetime.fromisoformat(bound) if isinstance(bound, str) else None
    except ValueError:
        return None


def _short(value: Any) -> str:
    if isinstance(value, dict) and not value:
        return "{}"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_INPUT_REPR else text[: _MAX_INPUT_REPR - 1] + "…"


def format_path(loc: list[int | str] | tuple[int | str, ...]) -> str:
    """Write a location as people read it: ``("messages", 1, "ts")`` → ``messages[1].ts``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def unknown_fields(model: BaseModel) -> list[str]:
    """Paths of every field the contracts do not know (kept, but worth a look after an upgrade)."""
    found: list[str] = []

    def walk(node: Any, loc: tuple[int | str, ...]) -> None:
        if isinstance(node, BaseModel):
            if isinstance(node, UnknownEvent):
                return
            for key in node.model_extra or {}:
                found.append(format_path((*loc, key)))
            for name, info in type(node).model_fields.items():
                if name in node.model_fields_set:
                    walk(getattr(node, name), (*loc, info.alias or name))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, (*loc, index))

    walk(model, ())
    return found
