"""ChatBuilder keeps Rocket.Chat's records and sends what current Rocket.Chat sends: Start before any
message, the first message its own event, a take before each forward to an agent, the closing
message in Close's history; the system messages of each step stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from omnihook.contracts import check_payload
from omnihook.contracts.building import BuildSettings
from omnihook.sender.chat import AgentUser, ChatBuilder, VisitorProfile

SMITH = AgentUser("A1", "smith", "Agent Smith", "smith@corp.example")
EMMA = AgentUser("A2", "emma", "Emma Brown", "emma@corp.example", {"team": "B2", "salary": 1})


def chat(**options: object) -> ChatBuilder:
    visitor = VisitorProfile("V1", "tok", "guest-1", name="Jane Doe", email="jane@example.com")
    return ChatBuilder("R1", visitor, started_at=datetime(2025, 3, 14, 9, tzinfo=UTC), department_id="D1",
                       **options)  # type: ignore[arg-type]  # fmt: skip


def kinds(builder: ChatBuilder) -> list[str | None]:
    return [m.get("t") for m in builder.records().messages]


def test_start_comes_before_any_message_and_the_first_message_has_its_own_event() -> None:
    builder = chat()
    start = builder.start()
    assert (start["messages"], "agent" in start, start["lastMessageAt"]) == (
        [],
        False,
        start["createdAt"],
    )
    assert kinds(builder) == ["livechat-started"]
    first = builder.visitor_says("Hi, my order has not arrived")
    assert (first["type"], [m["msg"] for m in first["messages"]]) == (
        "Message",
        ["Hi, my order has not arrived"],
    )
    stored = builder.records().messages[-1]
    assert (stored["token"], stored["alias"], stored["u"]["username"]) == (
        "tok",
        "Jane Doe",
        "guest-1",
    )
    assert builder.room["lm"] == stored["ts"] == first["lastMessageAt"]


def test_a_take_stores_servedby_then_connected_and_uj() -> None:
    builder = chat()
    builder.start()
    taken = builder.take(SMITH)
    assert kinds(builder) == ["livechat-started", "command", "uj"]
    command, join = builder.records().messages[1:]
    assert (command["msg"], join["msg"], join["u"]["_id"]) == ("connected", "smith", "A1")
    served_at = builder.room["servedBy"]["ts"]
    assert served_at < command["ts"] < join["ts"]  # servedBy first, the messages a moment later
    assert taken["servedBy"] == builder.room["servedBy"]
    assert taken["agent"] == {
        "_id": "A1",
        "username": "smith",
        "name": "Agent Smith",
        "email": "smith@corp.example",
    }


def test_a_forward_to_an_agent_is_a_take_then_the_forward() -> None:
    builder = chat(settings=BuildSettings(agent_custom_fields=frozenset({"team"})))
    builder.start()
    builder.take(SMITH)
    before = dict(builder.room["servedBy"])
    forwarded = builder.forward_to_agent(EMMA, comment="billing question")
    taken, again = builder.last_events
    assert again == forwarded
    assert (taken["type"], forwarded["type"]) == (
        "LivechatSessionTaken",
        "LivechatSessionForwarded",
    )
    assert taken["servedBy"]["_id"] == forwarded["servedBy"]["_id"] == "A2"
    assert forwarded["oldServedBy"] == before
    assert forwarded["agent"]["customFields"] == {"team": "B2"}  # only what is sent to integrations
    assert kinds(builder)[3:] == ["command", "uj", "ul", "livechat_transfer_history"]
    transfer = builder.records().messages[-1]["transferData"]
    assert (transfer["scope"], transfer["comment"], transfer["transferredTo"]["_id"], transfer["transferredBy"]["_id"]) == (
        "agent", "billing question", "A2", "A1")  # fmt: skip
    assert transfer["ts"] < builder.room["servedBy"]["ts"]  # the transfer began before the take


def test_a_forward_to_a_department_with_or_without_an_agent() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    queued = builder.forward_to_department("D2")
    assert [p["type"] for p in builder.last_events] == ["LivechatSessionForwarded"]
    assert (queued["departmentId"], queued["oldDepartmentId"], "servedBy" in queued) == (
        "D2",
        "D1",
        False,
    )
    assert builder.records().messages[-1]["transferData"]["previousDepartment"] == "D1"
    builder.take(SMITH)
    assigned = builder.forward_to_department("D3", EMMA)
    assert [p["type"] for p in builder.last_events] == [
        "LivechatSessionTaken",
        "LivechatSessionForwarded",
    ]
    assert (assigned["servedBy"]["_id"], assigned["oldDepartmentId"]) == ("A2", "D2")


def test_a_return_to_the_queue_sends_queued() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    queued = builder.return_to_queue()
    assert (queued["type"], "servedBy" in builder.room, "agent" in queued) == (
        "LivechatSessionQueued",
        False,
        False,
    )
    assert builder.records().messages[-1]["transferData"]["scope"] == "queue"
    assert builder.room["queuedAt"] > builder.room["ts"]


def test_close_stores_the_closing_message_just_after_closed_at_and_sends_it() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    builder.visitor_says("thanks")
    close = builder.close(comment="Solved")
    closing = builder.records().messages[-1]
    assert (closing["t"], closing["msg"], closing["u"]["_id"]) == ("livechat-close", "Solved", "A1")
    assert builder.room["closedAt"] < closing["ts"]
    assert "open" not in builder.room
    assert close["messages"][-1]["closingMessage"] is True
    assert (close["closedBy"], close["closer"]) == ({"_id": "A1", "username": "smith"}, "user")
    with pytest.raises(RuntimeError, match="closed"):
        builder.visitor_says("hello?")
    by_visitor = chat()
    by_visitor.start()
    by_visitor.close(by="visitor")
    assert by_visitor.records().messages[-1]["token"] == "tok"


def test_an_edit_keeps_a_hidden_copy_and_is_sent_again() -> None:
    builder = chat()
    builder.start()
    sent = builder.visitor_says("order A-1")
    edited = builder.edit_message(-1, "order A-2")
    original, copy = builder.records().messages[-2:]
    assert (copy["_hidden"], copy["parent"], copy["msg"], copy["ts"]) == (
        True,
        original["_id"],
        "order A-1",
        original["ts"],
    )
    assert edited["messages"][0]["_id"] == sent["messages"][0]["_id"]
    assert edited["messages"][0]["editedAt"] == original["editedAt"]
    without = chat(keep_history=False)
    without.start()
    without.visitor_says("x")
    without.edit_message(-1, "y")
    assert not any(m.get("_hidden") for m in without.records().messages)


def test_lead_capture_adds_what_matched_to_the_visitor() -> None:
    visitor = VisitorProfile("V1", "tok", "guest-1")
    builder = ChatBuilder("R1", visitor, started_at=datetime(2025, 3, 14, 9, tzinfo=UTC))
    builder.start()
    builder.visitor_says("Reach me at jane@example.com or (11) 98765-4321")
    lead = builder.lead_capture()
    assert (lead["type"], lead["messages"]) == ("LeadCapture", [])
    assert lead["visitor"]["email"] == [{"address": "jane@example.com"}]
    assert lead["visitor"]["phone"] == [{"phoneNumber": "(11) 98765-4321"}]
    assert builder.records().visitor["visitorEmails"] == [{"address": "jane@example.com"}]


def test_navigation_is_stored_and_sent_only_when_the_settings_say_so() -> None:
    quiet = chat()
    quiet.start()
    assert quiet.visitor_navigates("Pricing", "https://shop.example.com/pricing") is None
    assert quiet.last_events == []
    assert kinds(quiet)[-1] == "livechat_navigation_history"
    loud = chat(settings=BuildSettings(navigation_in_history=True))
    loud.start()
    sent = loud.visitor_navigates("Pricing", "https://shop.example.com/pricing")
    assert sent is not None
    assert (
        sent["messages"][0]["navigation"]["page"]["location"]["href"]
        == "https://shop.example.com/pricing"
    )
    assert sent["messages"][0]["agentId"] == "rocket.cat"


def test_records_are_a_copy_and_every_payload_keeps_the_contract() -> None:
    builder = chat(
        settings=BuildSettings(navigation_in_history=True, site_url="https://chat.example.com")
    )
    builder.start()
    builder.queue()
    builder.visitor_says(
        None, file={"_id": "F1", "name": "receipt.pdf", "type": "application/pdf", "size": 10}
    )
    builder.visitor_navigates("Pricing", "https://shop.example.com/pricing")
    builder.take(SMITH)
    builder.agent_says(
        None, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Rate us"}}]
    )
    builder.forward_to_agent(EMMA)
    builder.return_to_queue()
    builder.forward_to_department("D2", SMITH)
    builder.edit_message(0, "the receipt")
    builder.lead_capture(email="jane.doe@example.org")
    builder.close(comment="")
    builder.edit_after_close(tags=["vip"], custom_fields={"orderId": "A-1"}, topic="refund")
    for payload in builder.events:
        check = check_payload(json.dumps(payload))
        assert check.ok, check.lines()
        assert not check.notes, (payload["type"], check.notes)
    records = builder.records()
    records.room["fname"] = "changed"
    assert builder.room["fname"] == "Jane Doe"
    assert [p["type"] for p in builder.events].count("LivechatSessionTaken") == 3
    file_entry = builder.events[2]["messages"][0]
    assert (
        file_entry["fileUpload"]["publicFilePath"]
        == "https://chat.example.com/file-upload/F1/receipt.pdf"
    )


@pytest.mark.parametrize("version", ["legacy", "docs"])
def test_older_generations_shape_the_same_records_differently(version: str) -> None:
    visitor = VisitorProfile("V1", "tok", "guest-1", name="Jane Doe")
    builder = ChatBuilder(
        "R1", visitor, started_at=datetime(2025, 3, 14, 9, tzinfo=UTC), version=version
    )  # type: ignore[arg-type]
    builder.start()
    builder.crm_data = '{"contactId":"c-1"}'
    builder.take(AgentUser("A1", "smith", "Agent Smith"))
    payload = builder.visitor_says("hi")
    if version == "legacy":
        assert list(payload["visitor"])[3:6] == ["username", "email", "phone"]
        assert (payload["visitor"]["email"], payload["agent"]["email"]) == (None, None)
        assert payload["crmData"] == {"contactId": "c-1"}
        assert payload["messages"][0]["closingMessage"] is False
    else:
        assert (payload["visitor"]["email"], payload["visitor"]["phone"]) == ([], None)
        assert "rid" not in payload["messages"][0]
    assert check_payload(json.dumps(payload)).ok


def test_an_opening_message_before_start_is_in_its_history_as_the_reference_shows() -> None:
    builder = chat()
    builder.opening_message("Hi")
    start = builder.start()
    assert [m["msg"] for m in start["messages"]] == ["Hi"]
    assert start["lastMessageAt"] == start["messages"][0]["ts"]
    assert builder.last_events == [start]
