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
    return {"$schema": _SCHEMA_DIALECT, **schema}
