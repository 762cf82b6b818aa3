"""Input that is JSON, or nearly, but hostile or odd: deep nesting, lone surrogates, dates that UTC
cannot hold. Each gives an event or a ContractError, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnihook.contracts import (
    ContractError,
    LivechatOfflineMessage,
    LivechatSession,
    MessageEvent,
    UnknownEvent,
    check_payload,
    encode_json,
    parse_event,
    samples,
)

from .wild_forms import WILD_FORMS

TOO_DEEP = "nested deeper than 200 levels"


def _arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _in_custom_fields(nested: bytes) -> bytes:
    head, _, tail = json.dumps(dict(samples.sample("chat-close"), customFields=None)).rpartition(
        '"customFields": null'
    )
    return (head + '"customFields": {"deep": ').encode() + nested + b"}" + tail.encode()


def _nested_lists(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth - 1):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def _too_deep(data: Any) -> ContractError:
    with pytest.raises(ContractError) as caught:
        parse_event(data)
    assert caught.value.reason == "not_json"
    assert [str(problem) for problem in caught.value.problems] == [TOO_DEEP]
    return caught.value


@pytest.mark.parametrize("depth", [202, 1_000, 100_000])
def test_deep_arrays_and_objects_are_refused_at_any_depth(depth: int) -> None:
    _too_deep(_arrays(depth))
    _too_deep(_objects(depth))
    _too_deep(_arrays(depth).decode())
    _too_deep(b"[" * depth)  # never closed: still "too deep", not a crash


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_inside_a_field_is_refused(depth: int) -> None:
    _too_deep(_in_custom_fields(_arrays(depth)))
    _too_deep(_in_custom_fields(_objects(depth)))


def test_deep_nesting_after_another_fault_is_refused_not_crashed() -> None:
    # jiter stops at the first fault; Python's json then decodes on, down the nesting.
    _too_deep(b'{"a": NaN, "b": ' + _arrays(5_000) + b"}")
    _too_deep(b'{"a": "\\ud800", "b": ' + _arrays(5_000) + b"}")
    _too_deep(b'{"a": "\\ud800", "b": ' + _arrays(300) + b"}")  # Python decodes, jiter refuses


@pytest.mark.parametrize("depth", [300, 5_000, 100_000])
def test_deep_mapping_input_is_refused(depth: int) -> None:
    document = dict(samples.sample("chat-close"), customFields={"deep": _nested_lists(depth)})
    _too_deep(document)
    assert not check_payload(document).ok


def test_nesting_within_the_limit_is_kept() -> None:
    document = samples.sample("chat-close")
    document["customFields"] = {"deep": _nested_lists(150)}
    event = parse_event(json.dumps(document))
    assert event.to_dict() == document
    assert json.loads(event.to_json()) == document


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(min_value=190, max_value=3_000),
    opener=st.sampled_from(["[", '{"k":', '{"k":[']),
    field=st.sampled_from(["customFields", "crmData", "visitor", "messages", "tags"]),
)
def test_any_nesting_gives_an_event_or_a_contract_error(
    depth: int, opener: str, field: str
) -> None:
    closer = {"[": "]", '{"k":': "}", '{"k":[': "]}"}[opener]
    document = json.dumps(dict(samples.sample("chat-close"), **{field: "HOLE"}))
    body = document.replace('"HOLE"', opener * depth + "1" + closer * depth)
    try:
        parse_event(body)
    except ContractError as exc:
        assert exc.problems


def test_parsed_crm_data_never_raises_on_deep_text() -> None:
    for text in (_arrays(1_000).decode(), _arrays(100_000).decode(), "[" * 5_000):
        document = dict(samples.sample("chat-close"), crmData=text)
        event = parse_event(document)
        assert isinstance(event, LivechatSession)
        assert event.parsed_crm_data() == text  # the text unchanged, as for any non-JSON text
    shallow = parse_event(dict(samples.sample("chat-close"), crmData=_arrays(50).decode()))
    assert isinstance(shallow, LivechatSession)
    assert isinstance(shallow.parsed_crm_data(), list)


# Lone surrogates: JSON.stringify writes them as escapes; the model holds U+FFFD instead.


def _message_starting_with(escaped: str) -> bytes:
    """The visitor message sample, its text starting with ``escaped`` (JSON string content)."""
    document = json.dumps(samples.sample("visitor-message"))
    return document.replace('"msg": "', '"msg": "' + escaped, 1).encode()


@pytest.mark.parametrize(
    ("escaped", "parsed"),
    [
        ("Great \\ud83d", "Great \ufffd"),  # an emoji cut after its high half
        ("\\ude00 rest", "\ufffd rest"),  # the low half alone
        ("\\ud83d\\ud83d\\ude00", "\ufffd\U0001f600"),  # a lone half, then a real pair
        ("a\\udbff\\n", "a\ufffd\n"),
        ("\\ud83d\\ude00 intact \\ud800", "\U0001f600 intact \ufffd"),  # the pair is kept
    ],
)
def test_lone_surrogates_become_replacement_characters(escaped: str, parsed: str) -> None:
    original = samples.sample("visitor-message")["messages"][0]["msg"]
    event = parse_event(_message_starting_with(escaped))
    assert isinstance(event, MessageEvent)
    assert event.message is not None
    assert event.message.msg == parsed + original
    again = parse_event(event.to_json())  # writable as UTF-8 and as JSON
    assert again == event


def test_lone_surrogates_in_keys_crm_data_and_unknown_types() -> None:
    document = samples.sample("chat-close")
    body = json.dumps(document).replace(
        '"customFields": {', '"customFields": {"k\\ud800": "v\\udfff", ', 1
    )
    # The crmData text itself, which is then no JSON any more.
    body = body.replace('"crmData": "{', '"crmData": "\\ud800{', 1)
    event = parse_event(body)
    assert isinstance(event, LivechatSession)
    assert event.custom_fields is not None
    assert event.custom_fields["k\ufffd"] == "v\ufffd"
    assert isinstance(event.crm_data, str)
    assert event.crm_data.startswith("\ufffd{")
    assert event.parsed_crm_data() == event.crm_data  # not JSON: the text
    # Dates went through JSON again, so the strict date fields still take them.
    assert event.to_dict()["createdAt"] == document["createdAt"]
    assert event.to_dict()["messages"] == document["messages"]
    unknown = parse_event(b'{"type": "Future\\ud800", "_id": "R\\udc00"}')
    assert isinstance(unknown, UnknownEvent)
    assert (unknown.type, unknown.room_id) == ("Future\ufffd", "R\ufffd")


def test_lone_surrogates_inside_crm_data_json_text_are_replaced_too() -> None:
    event = parse_event(dict(samples.sample("chat-close"), crmData='{"id": "c\\ud800"}'))
    assert isinstance(event, LivechatSession)
    assert event.parsed_crm_data() == {"id": "c\ufffd"}


def test_a_surrogate_does_not_hide_what_else_is_wrong() -> None:
    document = samples.sample("chat-close")
    del document["visitor"]["username"]
    body = json.dumps(document).replace('"label": "', '"label": "\\ud800', 1)
    with pytest.raises(ContractError) as caught:
        parse_event(body)
    assert caught.value.reason == "contract"
    assert [p.path for p in caught.value.problems] == ["visitor.username"]
    with pytest.raises(ContractError) as not_json:
        parse_event(b'{"type": "Message", "x": "\\ud800" "y": 1}')
    assert not_json.value.reason == "not_json"
    assert "Expecting ',' delimiter" in str(not_json.value)  # where it really breaks


def test_mapping_input_with_lone_surrogates() -> None:
    document = samples.sample("visitor-message")
    document["messages"][0]["msg"] = "cut \ud83d"
    document["visitor"]["customFields"] = {"\udc00": "x"}
    assert b'"cut \\ud83d"' in encode_json(document)  # as JSON.stringify writes it
    event = parse_event(document)
    assert isinstance(event, MessageEvent)
    assert event.message is not None
    assert event.message.msg == "cut \ufffd"
    assert event.visitor.custom_fields == {"\ufffd": "x"}
    assert check_payload(document).ok


# Dates: only what UTC (and so Rocket.Chat's form) can hold.

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:00:00-02:00",
    "0001-01-01T00:59:59+01:00",
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("createdAt", lambda d: d),
        ("closedAt", lambda d: d),
        ("servedBy.ts", lambda d: d["servedBy"]),
        ("messages[2].ts", lambda d: d["messages"][2]),
        ("messages[4].editedAt", lambda d: d["messages"][4]),
    ],
)
def test_dates_utc_cannot_hold_break_the_contract_at_their_field(
    value: str, path: str, where: Any
) -> None:
    document = samples.sample("chat-close")
    where(document)[path.rpartition(".")[2]] = value
    with pytest.raises(ContractError) as caught:
        parse_event(json.dumps(document))
    assert caught.value.reason == "contract"
    [problem] = caught.value.problems
    assert problem.path == path
    assert problem.message.startswith(f"date out of range: {value} is ")
    check = check_payload(json.dumps(document))  # one problem, not a second on the date's form
    assert [str(p) for p in check.problems] == [str(problem)]


def test_offline_message_date_out_of_range() -> None:
    document = dict(samples.sample("offline-message"), sentAt="0001-01-01T00:00:00+00:01")
    with pytest.raises(ContractError) as caught:
        parse_event(document)
    assert [p.path for p in caught.value.problems] == ["sentAt"]
    assert caught.value.problems[0].message == (
        "date out of range: 0001-01-01T00:00:00+00:01 is before the earliest date UTC can hold"
        " (0001-01-01T00:00:00.000Z)"
    )


@pytest.mark.parametrize(
    ("written", "dumped"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00.000Z"),
        ("0999-06-01T00:00:00Z", "0999-06-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T21:59:59-02:00", "9999-12-31T23:59:59.000Z"),
    ],
)
def test_dates_at_the_edges_of_the_range_are_written_back(written: str, dumped: str) -> None:
    document = samples.sample("chat-close")
    document["createdAt"] = written
    document["messages"][0]["ts"] = written
    event = parse_event(document)
    assert isinstance(event, LivechatSession)
    assert event.to_dict()["createdAt"] == dumped
    assert json.loads(event.to_json())["messages"][0]["ts"] == dumped
    assert event.transcript().startswith(f"[{dumped[:10]} {dumped[11:19]}] Jane Doe:")
    assert parse_event(event.to_json()).to_dict() == event.to_dict()


def test_mapping_dates_out_of_range_are_named_too() -> None:
    document: dict[str, Any] = WILD_FORMS["minimal_room"]()
    document["createdAt"] = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ContractError) as caught:
        parse_event(document)
    assert [p.path for p in caught.value.problems] == ["createdAt"]
    assert caught.value.problems[0].message.startswith("date out of range: ")
    offline = dict(
        samples.sample("offline-message"),
        sentAt=datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=2))),
    )
    with pytest.raises(ContractError):
        parse_event(offline)
    assert isinstance(
        parse_event(dict(offline, sentAt=datetime(9999, 12, 31, tzinfo=UTC))),
        LivechatOfflineMessage,
    )
