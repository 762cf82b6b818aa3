"""JSON Schema: each type's schema accepts its sample and rejects broken documents."""

from __future__ import annotations

import jsonschema
import pytest

from omnihook.contracts import EventType, json_schema, samples


@pytest.mark.parametrize("event_type", list(EventType))
def test_schema_of_each_type_accepts_its_sample(event_type: EventType) -> None:
    schema = json_schema(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(samples.sample(event_type), schema)


def test_union_schema_accepts_every_sample_and_the_send_test() -> None:
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for name in samples.SAMPLE_NAMES:
        assert not list(validator.iter_errors(samples.sample(name))), name


def test_schema_rejects_what_the_models_reject() -> None:
    schema = json_schema(EventType.CHAT_CLOSE)
    document = samples.sample("chat-close")
    document["messages"][1]["ts"] = 1741944670
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert [list(error.absolute_path) for error in errors] == [["messages", 1, "ts"]]
    wrong_type = samples.sample("chat-close")
    wrong_type["type"] = "Message"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(wrong_type))


def test_schema_keeps_unknown_fields_allowed_and_names_the_type() -> None:
    schema = json_schema("Chat Close")
    assert schema["title"] == "LivechatSession (Chat Close)"
    assert schema.get("additionalProperties", True) is not False
    document = samples.sample("chat-close")
    document["newField"] = {"x": 1}
    jsonschema.validate(document, schema)
    assert schema["properties"]["createdAt"]["format"] == "date-time"


def test_schema_accepts_every_wild_form_and_each_agent_email_form() -> None:
    from .wild_forms import WILD_FORMS

    validator = jsonschema.Draft202012Validator(json_schema())
    for name, form in WILD_FORMS.items():
        assert not list(validator.iter_errors(form())), name
    broken = WILD_FORMS["agent_email_array"]()
    broken["agent"]["email"] = [{"verified": True}]  # an entry without its address
    close = jsonschema.Draft202012Validator(json_schema(EventType.CHAT_CLOSE))
    # `agent` is "an agent or null", so the error sits at `agent`; the array form itself is fine.
    assert [list(error.absolute_path) for error in close.iter_errors(broken)] == [["agent"]]
