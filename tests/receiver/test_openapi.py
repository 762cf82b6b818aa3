"""The OpenAPI description: a valid 3.1 document whose request schema takes every sample payload
Rocket.Chat sends and refuses a broken one; the command writes it; FastAPI's document is valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate

from omnihook.contracts import TOKEN_HEADER, EventType, samples
from omnihook.contracts.cli import root
from omnihook.receiver import Router
from omnihook.receiver.fastapi import rocketchat_router
from omnihook.receiver.openapi import openapi_document


def event_validator(document: dict) -> Draft202012Validator:  # type: ignore[type-arg]
    return Draft202012Validator({"$ref": "#/components/schemas/Event", **document})


def test_the_document_is_valid_and_takes_every_payload_rocket_chat_sends() -> None:
    document = openapi_document()
    validate(document)  # raises on an invalid OpenAPI 3.1 document
    operation = document["paths"]["/rocketchat"]["post"]
    assert operation["parameters"][0]["name"] == TOKEN_HEADER
    assert {"200", "400", "401", "411", "413", "422", "500", "503"} == set(operation["responses"])
    validator = event_validator(document)
    for event_type in EventType:
        validator.validate(samples.sample(event_type))
    broken = samples.sample("chat-close")
    broken["messages"] = "not a list"
    with pytest.raises(ValidationError, match="is not valid under any of the given schemas"):
        validator.validate(broken)
    assert "/rocketchat/trigger" in document["paths"]
    assert "/hooks/trigger" in openapi_document("/hooks")["paths"]


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    result = CliRunner().invoke(root, ["openapi", "--output", str(output), "--path", "/hook"])
    assert result.exit_code == 0, result.output
    written = json.loads(output.read_text())
    assert written == openapi_document("/hook")
    refused = CliRunner().invoke(root, ["openapi", "--path", "hook"])
    assert refused.exit_code == 2
    assert "must start with '/'" in refused.output


def test_fastapis_document_with_the_webhook_is_valid() -> None:
    app = FastAPI()
    app.include_router(rocketchat_router(Router(), tokens=["t"]))
    validate(app.openapi())
