"""JSON Schema of the payloads, for other languages and for validators outside Python."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from .event_type import EventType
from .events import EVENT_MODELS, Event

__all__ = ["json_schema"]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(event_type: EventType | str | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type, or of any event when ``None``.

    Unknown fields are allowed (``additionalProperties`` is not false) because Rocket.Chat adds
    fields over time and omnihook keeps them.
    """
    if event_type is None:
        schema = TypeAdapter(Event).json_schema(by_alias=True)
        schema["title"] = "Rocket.Chat Omnichannel webhook event"
    else:
        resolved = event_type if isinstance(event_type, EventType) else EventType.lookup(event_type)
        schema = EVENT_MODELS[resolved].model_json_schema(by_alias=True)
        schema["title"] = f"{resolved.value} ({resolved.label})"
    _require_type(schema)
    for definition in schema.get("$defs", {}).values():
        _require_type(definition)
    return {"$schema": _SCHEMA_DIALECT, **schema}


def _require_type(schema: dict[str, Any]) -> None:
    """Mark ``type`` required where it is an event's constant: the models default it, but a
    payload without it names no event type and is refused (422), so the schema must say so."""
    kind = schema.get("properties", {}).get("type", {})
    if "const" in kind and "type" not in schema.get("required", []):
        schema["required"] = [*schema.get("required", []), "type"]
