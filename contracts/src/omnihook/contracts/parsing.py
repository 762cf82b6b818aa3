"""``parse_event``: bytes, text or a mapping in, the right typed payload out, or one clear error."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .event_type import EventType
from .events import AnyEvent, Event, UnknownEvent
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
    except (TypeError, ValueError) as exc:
        raise ContractError("not_json", [Problem("", f"cannot be written as JSON: {exc}")]) from exc


def _explain_failure(raw: bytes | bytearray | str, exc: ValidationError) -> AnyEvent:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as decode_error:
        raise ContractError("not_json", [Problem("", str(decode_error))]) from None
    errors = exc.errors(include_url=False)
    if errors[0]["type"] == "json_invalid":
        # Python's json module accepts a little more (lone surrogates); the validating parser rules.
        raise ContractError("not_json", [Problem("", errors[0]["msg"])]) from None
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
    if kind == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_short(given)}"
    text = error["msg"]
    text = text[0].lower() + text[1:]
    return f"{text}, got {_short(given)}"


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
