"""parse_event: every sample and every form seen in the wild parses, round-trips and is typed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnihook.contracts import (
    ContractError,
    EventType,
    LeadCapture,
    LivechatEdit,
    LivechatOfflineMessage,
    LivechatSession,
    LivechatSessionForwarded,
    LivechatSessionQueued,
    LivechatSessionStart,
    LivechatSessionTaken,
    MessageEvent,
    UnknownEvent,
    parse_event,
    samples,
    unknown_fields,
)

from .wild_forms import WILD_FORMS

EXPECTED_MODEL = {
    "chat-start": LivechatSessionStart,
    "chat-queued": LivechatSessionQueued,
    "chat-taken": LivechatSessionTaken,
    "visitor-message": MessageEvent,
    "agent-message": MessageEvent,
    "chat-forwarded": LivechatSessionForwarded,
    "chat-close": LivechatSession,
    "chat-edit": LivechatEdit,
    "lead-capture": LeadCapture,
    "offline-message": LivechatOfflineMessage,
    "send-test": LivechatSession,
}


def test_every_event_type_has_a_sample() -> None:
    typed = {samples.sample(name)["type"] for name in samples.SAMPLE_NAMES}
    assert typed == {member.value for member in EventType}
    assert set(EXPECTED_MODEL) == set(samples.SAMPLE_NAMES)


@pytest.mark.parametrize("name", samples.SAMPLE_NAMES)
def test_sample_parses_to_its_model_and_round_trips(name: str) -> None:
    document = samples.sample(name)
    raw = json.dumps(document).encode()
    event = parse_event(raw)
    assert type(event) is EXPECTED_MODEL[name]
    assert event.event_type is EventType(document["type"])
    assert event.to_dict() == document
    assert json.loads(event.to_json()) == document
    if name != "send-test":  # the Send Test sample is hand-written in another order
        # Real events come out in the key order of Rocket.Chat's sendToCRM, not only the keys.
        assert list(event.to_dict()) == list(document)


@pytest.mark.parametrize("form", sorted(WILD_FORMS))
def test_wild_form_parses_and_round_trips(form: str) -> None:
    document = WILD_FORMS[form]()
    event = parse_event(json.dumps(document))
    assert event.to_dict() == document
    assert json.loads(event.to_json()) == document
    assert not isinstance(event, UnknownEvent)


@pytest.mark.parametrize(
    ("form", "emails", "phones"),
    [
        ("current_emails", ["jane.doe@example.com"], ["+15551234567"]),
        ("older_null_contacts", [], []),
        ("absent_contacts", [], []),
        ("string_contacts", ["jane@example.com"], ["+15551234"]),
        ("public_docs_form", ["jane.doe@example.com"], []),
    ],
)
def test_contact_helpers_read_every_form(form: str, emails: list[str], phones: list[str]) -> None:
    event = parse_event(WILD_FORMS[form]())
    assert isinstance(event, LivechatSession)
    assert event.visitor.emails == emails
    assert event.visitor.phones == phones
    assert event.visitor.first_email == (emails[0] if emails else None)
    assert event.visitor.first_phone == (phones[0] if phones else None)


def test_offline_message_email_is_a_string() -> None:
    event = parse_event(samples.sample("offline-message"))
    assert isinstance(event, LivechatOfflineMessage)
    assert event.visitor.first_email == "omar.haddad@example.org"
    assert event.room_id is None
    assert event.message == "Do you ship to Canada? Please email me."


def test_send_test_sample_is_recognised_and_has_its_quirks() -> None:
    event = parse_event(samples.send_test_sample())
    assert isinstance(event, LivechatSession)
    assert event.is_test
    assert event.visitor.id == ""
    assert event.visitor.token is None
    assert event.visitor.first_email == "email@address.com"
    assert event.visitor.first_phone == "192873192873"
    assert [m.id for m in event.messages] == [None, None]
    assert [m.is_from_agent for m in event.messages] == [False, True]


@pytest.mark.parametrize("name", [n for n in samples.SAMPLE_NAMES if n != "send-test"])
def test_real_samples_are_not_tests(name: str) -> None:
    assert not parse_event(samples.sample(name)).is_test


def test_send_test_sample_uses_the_given_time() -> None:
    now = datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
    document = samples.send_test_sample(now)
    assert document["createdAt"] == "2025-06-01T12:30:15.123Z"
    assert {m["ts"] for m in document["messages"]} == {"2025-06-01T12:30:15.123Z"}


def test_visitor_and_agent_messages_are_told_apart_by_agent_id() -> None:
    visitor = parse_event(samples.sample("visitor-message"))
    agent = parse_event(samples.sample("agent-message"))
    assert isinstance(visitor, MessageEvent)
    assert isinstance(agent, MessageEvent)
    assert visitor.is_visitor_message
    assert not visitor.is_agent_message
    assert agent.is_agent_message
    assert not agent.is_visitor_message
    assert agent.message is not None
    assert agent.message.agent_id == "aG3ntSm1thX9kQ4Zt"


def test_crm_data_is_parsed_back_from_its_json_string() -> None:
    event = parse_event(samples.sample("chat-close"))
    assert isinstance(event, LivechatSession)
    assert event.crm_data == '{"ok":true,"contactId":"crm-7731"}'
    assert event.parsed_crm_data() == {"ok": True, "contactId": "crm-7731"}
    older = parse_event(WILD_FORMS["crm_data_object"]())
    assert isinstance(older, LivechatSession)
    assert older.parsed_crm_data() == {"contactId": "crm-7731", "nested": {"a": [1, 2]}}
    text = parse_event(WILD_FORMS["crm_data_plain_text"]())
    assert isinstance(text, LivechatSession)
    assert text.parsed_crm_data() == "OK"
    assert parse_event(samples.sample("chat-start")).parsed_crm_data() is None  # type: ignore[union-attr]


def test_transcript_is_plain_text_of_the_history() -> None:
    event = parse_event(samples.sample("chat-close"))
    assert isinstance(event, LivechatSession)
    assert event.transcript().splitlines() == [
        "[2025-03-14 09:30:04] Jane Doe: Hi, my order A-10042 has not arrived yet.",
        "[2025-03-14 09:31:10] Agent Smith: Hello Jane, let me check that for you.",
        "[2025-03-14 09:31:45] Jane Doe: Thanks! It was due on Monday.",
        "[2025-03-14 09:33:02] Jane Doe: [file: receipt.pdf]",
        "[2025-03-14 09:34:20] Emma Brown: It is back in stock and ships today. (edited)",
        "[2025-03-14 09:36:00] Emma Brown: Order shipped, tracking number sent by email.",
    ]


def test_transcript_renders_blocks_navigation_and_silent_close() -> None:
    blocks = parse_event(WILD_FORMS["blocks_message"]())
    navigation = parse_event(WILD_FORMS["navigation_message"]())
    silent = parse_event(WILD_FORMS["close_without_comment"]())
    assert isinstance(blocks, MessageEvent)
    assert isinstance(navigation, MessageEvent)
    assert isinstance(silent, LivechatSession)
    assert blocks.transcript().endswith("Agent Smith: Pick a *time* 10:00")
    assert navigation.transcript().endswith(
        "Jane Doe: [visited Pricing (https://shop.example.com/pricing)]"
    )
    assert silent.transcript().endswith("Emma Brown: [closed the chat]")
    assert silent.messages[-1].is_closing


def test_navigation_messages_are_neither_the_agents_nor_the_visitors() -> None:
    event = parse_event(WILD_FORMS["navigation_message"]())
    assert isinstance(event, MessageEvent)
    message = event.message
    assert message is not None
    assert message.agent_id == "rocket.cat"  # Rocket.Chat marks it as not the visitor's
    assert event.is_navigation
    assert message.is_navigation
    assert not event.is_agent_message
    assert not message.is_from_agent
    assert not event.is_visitor_message
    assert not message.is_from_visitor
    assert message.navigation is not None
    assert message.navigation.page is not None
    assert message.navigation.token == event.visitor.token
    assert message.navigation.page.change == "url"
    assert message.text == "[visited Pricing (https://shop.example.com/pricing)]"
    for name in ("visitor-message", "agent-message"):
        other = parse_event(samples.sample(name))
        assert isinstance(other, MessageEvent)
        assert not other.is_navigation
    # In a room's history too: the transcript names the visitor for the move.
    close = samples.sample("chat-close")
    close["messages"].insert(1, WILD_FORMS["navigation_message"]()["messages"][0])
    history = parse_event(close)
    assert isinstance(history, LivechatSession)
    assert [m.is_from_agent for m in history.messages][:3] == [False, False, True]
    assert "Jane Doe: [visited Pricing (https://shop.example.com/pricing)]" in history.transcript()


def test_navigation_form_with_the_token_in_the_page_is_still_accepted() -> None:
    document = samples.sample("visitor-message")
    message = document["messages"][0]
    del message["msg"]
    message["navigation"] = {
        "page": {"title": "Pricing", "location": {"href": "https://x.example/p"}, "token": "t"}
    }
    event = parse_event(document)
    assert isinstance(event, MessageEvent)
    assert event.to_dict() == document
    assert event.is_navigation
    assert not event.is_visitor_message
    assert event.transcript().endswith("Jane Doe: [visited Pricing (https://x.example/p)]")


@pytest.mark.parametrize(
    ("form", "emails"),
    [
        ("current_emails", ["emma@support.example.com"]),
        ("agent_email_array", ["emma@support.example.com", "emma.brown@example.org"]),
        ("agent_email_null", []),
    ],
)
def test_agent_email_helpers_read_every_form(form: str, emails: list[str]) -> None:
    document = WILD_FORMS[form]()
    event = parse_event(document)
    assert isinstance(event, LivechatSession)
    assert event.agent is not None
    assert event.agent.emails == emails
    assert event.agent.first_email == (emails[0] if emails else None)
    # Written back in the form it came in, key order included.
    assert json.dumps(event.to_dict()["agent"]) == json.dumps(document["agent"])
    assert json.dumps(json.loads(event.to_json())["agent"]) == json.dumps(document["agent"])


def test_agent_email_array_is_typed_and_checked() -> None:
    event = parse_event(WILD_FORMS["agent_email_array"]())
    assert isinstance(event, LivechatSession)
    assert event.agent is not None
    assert isinstance(event.agent.email, list)
    assert [(e.address, e.verified) for e in event.agent.email] == [
        ("emma@support.example.com", True),
        ("emma.brown@example.org", False),
    ]
    absent = samples.sample("chat-close")
    del absent["agent"]["email"]
    parsed = parse_event(absent)
    assert isinstance(parsed, LivechatSession)
    assert parsed.agent is not None
    assert parsed.agent.first_email is None
    assert "email" not in parsed.to_dict()["agent"]
    broken = samples.sample("chat-close")
    broken["agent"]["email"] = [{"verified": True}]
    assert _problems(broken) == {
        "agent.email": 'expected a list of {address} objects, a string or null, got [{"verified": true}]'
    }


def test_forwarded_to_department_or_agent() -> None:
    to_agent = parse_event(samples.sample("chat-forwarded"))
    to_department = parse_event(WILD_FORMS["forwarded_to_department"]())
    assert isinstance(to_agent, LivechatSessionForwarded)
    assert isinstance(to_department, LivechatSessionForwarded)
    assert not to_agent.to_department
    assert to_agent.old_served_by is not None
    assert to_agent.old_served_by.username == "agent.smith"
    assert to_department.to_department
    assert to_department.old_department_id == "s4L3sD3ptMn8Vb2Q"


def test_unknown_fields_are_kept_and_listed() -> None:
    document = WILD_FORMS["unknown_fields_everywhere"]()
    event = parse_event(document)
    assert event.to_dict() == document
    assert sorted(unknown_fields(event)) == [
        "agent.status",
        "messages[0].reactions",
        "messages[0].u.avatarETag",
        "source",
        "visitor.activity",
    ]
    assert unknown_fields(parse_event(samples.sample("chat-close"))) == []


@pytest.mark.parametrize(
    ("written", "dumped"),
    [
        ("2025-01-01T10:00:00Z", "2025-01-01T10:00:00.000Z"),
        ("2025-01-01T10:00:00.5Z", "2025-01-01T10:00:00.500Z"),
        ("2025-01-01T12:00:00.250+02:00", "2025-01-01T10:00:00.250Z"),
        ("2025-01-01T10:00:00.123456Z", "2025-01-01T10:00:00.123Z"),
    ],
)
def test_dates_are_written_in_rocket_chat_form(written: str, dumped: str) -> None:
    document = WILD_FORMS["minimal_room"]()
    document["createdAt"] = written
    assert parse_event(document).to_dict()["createdAt"] == dumped


def test_mapping_input_may_hold_datetimes() -> None:
    document = WILD_FORMS["minimal_room"]()
    document["createdAt"] = datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = parse_event(document)
    assert event.to_dict()["createdAt"] == "2025-01-01T10:00:00.000Z"


def test_bytes_str_mapping_and_memoryview_inputs_agree() -> None:
    document = samples.sample("chat-taken")
    raw = json.dumps(document).encode()
    parsed = [
        parse_event(raw),
        parse_event(raw.decode()),
        parse_event(document),
        parse_event(memoryview(raw)),
    ]
    assert all(event == parsed[0] for event in parsed)


def test_models_built_in_python_dump_type_and_messages() -> None:
    built = LivechatSessionStart.model_validate(
        {
            "id": "R1",
            "created_at": datetime(2025, 1, 1, 10, tzinfo=UTC),
            "visitor": {"id": "V1", "username": "guest-1"},
        }
    )
    assert built.to_dict() == {
        "_id": "R1",
        "createdAt": "2025-01-01T10:00:00.000Z",
        "visitor": {"_id": "V1", "username": "guest-1"},
        "type": "LivechatSessionStart",
        "messages": [],
    }


def _problems(document: Any) -> dict[str, str]:
    with pytest.raises(ContractError) as caught:
        parse_event(document)
    return {problem.path: problem.message for problem in caught.value.problems}


def test_contract_errors_name_each_field_and_why() -> None:
    document = samples.sample("chat-close")
    document["messages"][1]["ts"] = 1741944670
    del document["visitor"]["_id"]
    document["visitor"]["email"] = 42
    document["closedBy"] = "emma"
    problems = _problems(document)
    assert problems.keys() == {"messages[1].ts", "visitor._id", "visitor.email", "closedBy"}
    assert problems["messages[1].ts"].startswith("not a Rocket.Chat date")
    assert problems["messages[1].ts"].endswith("got 1741944670")
    assert problems["visitor._id"] == "required field is missing"
    assert problems["visitor.email"] == (
        "expected a list of {address} objects, a string or null, got 42"
    )
    assert 'got "emma"' in problems["closedBy"]


def test_naive_dates_are_rejected() -> None:
    document = WILD_FORMS["minimal_room"]()
    document["createdAt"] = "2025-01-01T10:00:00"
    assert _problems(document)["createdAt"].startswith("not a Rocket.Chat date")


def test_error_reasons_separate_bad_json_from_bad_contracts() -> None:
    cases = {
        b"not json": "not_json",
        b"\xff\xfe\x00": "not_json",
        b"": "not_json",
        b'{"type": "LivechatSessionStart", "x": "\\ud800"}': "contract",  # lone surrogate: JSON after all
        b'{"type": "LivechatSessionStart", "x": "\\ud800",}': "not_json",
        b"[1, 2]": "not_object",
        b'"text"': "not_object",
        b"null": "not_object",
        b"{}": "contract",
        b'{"type": 7}': "contract",
        b'{"type": "Message"}': "contract",
    }
    for raw, reason in cases.items():
        with pytest.raises(ContractError) as caught:
            parse_event(raw)
        assert caught.value.reason == reason, raw
        assert caught.value.problems, raw
    with pytest.raises(ContractError) as caught:
        parse_event(b"{}")
    assert str(caught.value) == "not a valid Rocket.Chat payload: type: required field is missing"


def test_unknown_type_is_kept_whole() -> None:
    document = {"type": "LivechatSessionPaused", "_id": "R1", "pausedBy": {"_id": "A1"}}
    event = parse_event(document)
    assert isinstance(event, UnknownEvent)
    assert event.type == "LivechatSessionPaused"
    assert event.room_id == "R1"
    assert event.event_type is None
    assert event.to_dict() == document


def test_event_type_lookup_and_labels() -> None:
    for name in ("LivechatSession", "CHAT_CLOSE", "Chat Close", "chat-close", "chat_close"):
        assert EventType.lookup(name) is EventType.CHAT_CLOSE
    assert EventType.lookup("Visitor Messages") is EventType.MESSAGE
    assert EventType.lookup("Agent Messages") is EventType.MESSAGE
    assert EventType.CHAT_FORWARDED.label == "Forwarding"
    with pytest.raises(ValueError, match="unknown event type 'Chat Paused'; known types: "):
        EventType.lookup("Chat Paused")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_give_an_event_or_a_contract_error(raw: bytes) -> None:
    try:
        parse_event(raw)
    except ContractError as exc:
        assert exc.problems


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([m.value for m in EventType]))
def test_arbitrary_json_in_any_field_never_crashes(value: Any, event_type: str) -> None:
    document = samples.sample(event_type)
    for key in list(document)[:6]:
        mutated = dict(document, **{key: value})
        try:
            event = parse_event(json.dumps(mutated))
        except ContractError as exc:
            assert exc.reason == "contract"
            assert all(problem.path for problem in exc.problems)
        else:
            assert event.to_dict()[key] == mutated[key] or key.endswith("At")


def _key_orders(node: Any, path: str = "") -> dict[str, list[str]]:
    orders: dict[str, list[str]] = {}
    if isinstance(node, dict):
        orders[path] = list(node)
        for key, value in node.items():
            orders.update(_key_orders(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            orders.update(_key_orders(value, f"{path}[{index}]"))
    return orders


@pytest.mark.parametrize("name", [n for n in samples.SAMPLE_NAMES if n != "send-test"])
def test_nested_key_order_is_rocket_chats(name: str) -> None:
    document = samples.sample(name)
    assert _key_orders(parse_event(document).to_dict()) == _key_orders(document)


def test_check_payload_holds_senders_to_rocket_chats_exact_date_form() -> None:
    from omnihook.contracts import check_payload

    document = samples.sample("chat-close")
    document["messages"][1]["ts"] = "2025-03-14T09:31:10Z"  # valid ISO, not Rocket.Chat's form
    document["servedBy"]["ts"] = "2025-03-14T10:33:30.519+01:00"
    document["extra"] = True
    check = check_payload(json.dumps(document))
    assert not check.ok
    assert [p.path for p in check.problems] == ["servedBy.ts", "messages[1].ts"]
    assert check.problems[1].message == (
        "not a Rocket.Chat date: expected the form 2025-01-01T10:00:00.000Z, got '2025-03-14T09:31:10Z'"
    )
    assert check.notes == ("unknown field extra",)
    assert check.lines()[-1] == "note: unknown field extra"
    assert check_payload(samples.sample("chat-close")).ok
    unknown = check_payload({"type": "Future", "_id": "R"})
    assert unknown.ok
    assert unknown.notes == ("unknown event type 'Future' (a newer Rocket.Chat?)",)
    broken = check_payload(b"[1]")
    assert broken.event is None
    assert broken.error is not None
    assert broken.error.reason == "not_object"
