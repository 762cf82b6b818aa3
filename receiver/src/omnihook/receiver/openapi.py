"""An OpenAPI 3.1 description of what Rocket.Chat sends and how omnihook answers.

``omnihook openapi`` writes it; :mod:`omnihook.receiver.fastapi` puts the same operation into a
FastAPI app's document. The payload types come from the contracts' JSON Schema.

>>> document = openapi_document()
>>> sorted(document["paths"])
['/healthz', '/rocketchat', '/rocketchat/trigger']
"""

from __future__ import annotations

import copy
from typing import Any

from omnihook.contracts import TOKEN_HEADER, EventType, json_schema

from .app import DEFAULT_PATH

__all__ = ["openapi_document", "webhook_operation"]

_ERROR = {"type": "object", "required": ["error", "detail"],
          "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}  # fmt: skip
# What a newer Rocket.Chat may send: a type this version does not know is accepted (200) and
# kept whole for catch-all handlers, so the request body is "a known event, or this".
_UNKNOWN_EVENT = {"type": "object", "required": ["type"],
                  "description": "an event type this version of omnihook does not know (a newer "
                                 "Rocket.Chat): kept as sent, routed to catch-all handlers",
                  "properties": {"type": {"type": "string",
                                          "not": {"enum": [kind.value for kind in EventType]}}}}  # fmt: skip
_SCALAR = {"type": ["string", "number", "boolean"]}
# One of a trigger's metadata entries, as Rocket.Chat sends them (``value`` may be null or absent).
_TRIGGER_METADATA = {"type": "object", "required": ["key"],
                     "properties": {"key": _SCALAR,
                                    "value": {"type": ["string", "number", "boolean", "null"]}}}  # fmt: skip
# The answers of the table in the README's "Status codes" (and DESIGN.md).
_REFUSALS = {
    "400": "the body is not a JSON object, a length is wrong, or the request cannot be parsed",
    "401": f"the {TOKEN_HEADER} header is missing, sent twice, or matches no token",
    "411": "HTTP/1.0 without a Content-Length",
    "413": "the body is over the receiver's limit",
    "422": "the body breaks the contract of its event type",
    "500": "a handler failed (inline mode): Rocket.Chat retries",
    "503": "the store cannot take the event now: Rocket.Chat retries",
}


def webhook_operation(*, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The webhook's ``POST`` operation: the token header, the payload ``schema`` (default: the
    contracts' schema of any event, ``$defs`` inlined), and every answer."""
    responses: dict[str, Any] = {
        "200": {"description": "accepted (stored, or handled inline); Rocket.Chat keeps the body "
                               "as the room's crmData",
                "content": {"application/json": {"schema": {"type": "object"}}}},
    }  # fmt: skip
    for status, text in _REFUSALS.items():
        responses[status] = {"description": text,
                             "content": {"application/json": {"schema": _ERROR}}}  # fmt: skip
    return {
        "summary": "Rocket.Chat Omnichannel webhook",
        "description": "Rocket.Chat posts each Omnichannel event here (Administration > "
        "Omnichannel > Webhooks). Only 200 counts as delivered; 5xx and 429 are retried.",
        "parameters": [{"name": TOKEN_HEADER, "in": "header", "required": True,
                        "description": "the webhook's Secret Token", "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": schema if schema is not None else _any_event(_inlined(json_schema()))}}},
        "responses": responses,
    }  # fmt: skip


def openapi_document(path: str = DEFAULT_PATH, *, trigger: bool = True) -> dict[str, Any]:
    """The whole document: the webhook at ``path`` (its payload types as named components),
    the Livechat trigger endpoint (``PATH/trigger``) and ``/healthz``."""
    schema = json_schema()
    components = {
        name: _rebased(definition) for name, definition in schema.get("$defs", {}).items()
    }
    event = _rebased({key: value for key, value in schema.items()
                      if key not in ("$defs", "$schema")})  # fmt: skip
    components["Event"] = event
    components["UnknownEvent"] = _UNKNOWN_EVENT
    paths: dict[str, Any] = {
        path: {"post": {**webhook_operation(schema=_any_event({"$ref": "#/components/schemas/Event"},
                                                             {"$ref": "#/components/schemas/UnknownEvent"})),
                        "operationId": "receiveWebhook"}},
        "/healthz": {"get": {"operationId": "health", "summary": "Can the receiver take a "
                             "delivery (with a store: a write succeeds within 3 s)?",
                             "responses": {"200": {"description": "ok"},
                                           "503": {"description": "the store cannot be written"}}}},
    }  # fmt: skip
    if trigger:
        paths[f"{path.rstrip('/')}/trigger"] = {"post": {
            "operationId": "answerTrigger",
            "summary": "A Livechat trigger's external service (with @router.trigger)",
            "parameters": webhook_operation()["parameters"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["visitorToken"],
                "properties": {"visitorToken": {"type": "string", "minLength": 1},
                               "metadata": {"type": ["array", "null"], "items": _TRIGGER_METADATA}}}}}},
            "responses": {"200": {"description": "the messages to show the visitor",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          "204": {"description": "the handler had nothing to say: the visitor sees "
                                                 "the trigger's fallback"},
                          "504": {"description": "the handler did not answer in time: the visitor "
                                                 "sees the fallback",
                                  "content": {"application/json": {"schema": _ERROR}}},
                          **{status: {"description": text,
                                      "content": {"application/json": {"schema": _ERROR}}}
                             for status, text in _REFUSALS.items() if status != "503"},
                          "404": {"description": "no @router.trigger handler is registered: the "
                                                 "endpoint is not served",
                                  "content": {"application/json": {"schema": _ERROR}}}},
        }}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "Rocket.Chat Omnichannel webhooks, as omnihook receives them",
                 "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }  # fmt: skip


def _any_event(known: dict[str, Any], unknown: dict[str, Any] = _UNKNOWN_EVENT) -> dict[str, Any]:
    """The request body: one of the nine known events, or an event of a type not known yet."""
    return {"oneOf": [known, unknown]}


def _rebased(node: Any) -> Any:
    """``node`` with ``#/$defs/X`` references (and discriminator mappings) pointing at
    ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {key: _rebased(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_rebased(item) for item in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return "#/components/schemas/" + node.removeprefix("#/$defs/")
    return node


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` put in place of their ``$ref`` (a document that embeds it
    would read ``#/$defs/...`` from its own root), without discriminator mappings naming them."""
    definitions = schema.get("$defs", {})

    def walk(node: Any, depth: int) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/") and depth < 32:
                found = copy.deepcopy(definitions[reference.removeprefix("#/$defs/")])
                return walk({**found, **{k: v for k, v in node.items() if k != "$ref"}}, depth + 1)
            return {key: walk(value, depth) for key, value in node.items()
                    if key not in ("$defs", "discriminator", "$schema")}  # fmt: skip
        if isinstance(node, list):
            return [walk(item, depth) for item in node]
        return node

    inlined: dict[str, Any] = walk(schema, 0)
    return inlined
