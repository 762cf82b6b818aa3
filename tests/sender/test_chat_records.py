"""ChatBuilder keeps Rocket.Chat's records and sends what current Rocket.Chat sends, in its order:
Start before any message, the first message its own event (after an auto-assigned take's Chat
Taken), a take before each forward to an agent or auto-assigned department, the transfer after
the take and ``ul`` after the transfer, a forward into a department's queue sent while the room
is still served, hidden edit copies dated by the edit that replaced them, a manager's join that
sends nothing, a new message's event with the room as it was before it, the closing message in
Close's history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    assert builder.room["lm"] == stored["ts"]
    # Built from the room read before the message was saved: lm moves only afterwards.
    assert first["lastMessageAt"] == start["createdAt"]
    second = builder.visitor_says("Order A-1")
    assert second["lastMessageAt"] == stored["ts"]


def test_an_auto_assigned_first_message_comes_after_its_take() -> None:
    builder = chat()
    first = builder.visitor_starts("Hi, my order has not arrived", agent=SMITH)
    start, taken, _ = builder.last_events
    assert [p["type"] for p in builder.last_events] == [
        "LivechatSessionStart",
        "LivechatSessionTaken",
        "Message",
    ]
    # The deferred Taken hook reads the history before the first message is inserted.
    assert (taken["messages"], taken["lastMessageAt"]) == ([], start["createdAt"])
    assert taken["servedBy"]["_id"] == "A1"
    assert kinds(builder) == ["livechat-started", "command", "uj", None]
    join, message = builder.records().messages[2:]
    assert builder.room["servedBy"]["ts"] < join["ts"] < message["ts"] == first["messages"][0]["ts"]
    assert builder.moments == sorted(builder.moments)
    queued = chat()
    queued.visitor_starts("Hi")
    assert [p["type"] for p in queued.last_events] == [
        "LivechatSessionStart",
        "LivechatSessionQueued",
        "Message",
    ]
    assert queued.last_events[1]["messages"] == []
    with pytest.raises(RuntimeError, match="exists"):
        queued.visitor_starts("again")


def test_a_take_stores_servedby_then_connected_and_uj() -> None:
    builder = chat()
    builder.start()
    taken = builder.take(SMITH)
    assert kinds(builder) == ["livechat-started", "command", "uj"]
    command, join = builder.records().messages[1:]
    # RoutingManager.assignAgent: saveSystemMessage('uj', rid, '', user)
    assert (command["msg"], join["msg"], join["u"]["_id"]) == ("connected", "", "A1")
    served_at = builder.room["servedBy"]["ts"]
    assert served_at < command["ts"] < join["ts"]  # servedBy first, the messages a moment later
    assert taken["servedBy"] == builder.room["servedBy"]
    assert taken["agent"] == {
        "_id": "A1",
        "username": "smith",
        "name": "Agent Smith",
        "email": "smith@corp.example",
    }


def test_a_forward_to_an_agent_is_a_take_then_the_transfer_then_ul() -> None:
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
    # forwardRoomToAgent: takeInquiry (command, uj), then saveTransferHistory, then the ul
    assert kinds(builder)[3:] == ["command", "uj", "livechat_transfer_history", "ul"]
    command, join, transfer, left = builder.records().messages[3:]
    data = transfer["transferData"]
    assert (data["scope"], data["comment"], data["transferredTo"]["_id"], data["transferredBy"]) == (
        "agent", "billing question", "A2",
        {"_id": "A1", "username": "smith", "name": "Agent Smith", "userType": "agent"})  # fmt: skip
    served_at = builder.room["servedBy"]["ts"]
    assert served_at < command["ts"] < join["ts"] < data["ts"] < transfer["ts"] < left["ts"]
    assert (left["msg"], left["u"]["_id"]) == ("smith", "A1")


def test_a_forward_to_a_department_that_assigns_an_agent() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    forwarded = builder.forward_to_department("D2", EMMA)
    taken, again = builder.last_events
    assert again == forwarded
    assert [p["type"] for p in builder.last_events] == [
        "LivechatSessionTaken",
        "LivechatSessionForwarded",
    ]
    # The take happens while the room still has its old department; the department changes last.
    assert (taken["servedBy"]["_id"], taken["departmentId"]) == ("A2", "D1")
    assert (forwarded["servedBy"]["_id"], forwarded["departmentId"]) == ("A2", "D2")
    assert (forwarded["oldDepartmentId"], forwarded["agent"]["_id"]) == ("D1", "A2")
    assert kinds(builder)[3:] == ["command", "uj", "livechat_transfer_history", "ul"]
    data = builder.records().messages[5]["transferData"]
    assert (data["scope"], data["previousDepartment"], data["nextDepartment"]) == (
        "department",
        "D1",
        {"_id": "D2"},
    )
    assert "transferredTo" not in data  # routing chose the agent, not the forwarder
    builder.forward_to_department("D3", SMITH, picked=True)
    assert builder.records().messages[-2]["transferData"]["transferredTo"]["_id"] == "A1"
    with pytest.raises(RuntimeError, match="same-department"):
        builder.forward_to_department("D3", EMMA)


def test_a_forward_into_a_departments_queue_is_sent_while_the_room_is_still_served() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    forwarded = builder.forward_to_department("D2")
    queued = builder.last_events[-1]
    assert [p["type"] for p in builder.last_events] == [
        "LivechatSessionForwarded",
        "LivechatSessionQueued",
    ]
    assert builder.last_events[0] == forwarded
    # unassignAgent: updateChatDepartment (Forwarded) before removeAgentByRoomId
    assert (forwarded["departmentId"], forwarded["oldDepartmentId"]) == ("D2", "D1")
    assert (forwarded["servedBy"]["_id"], forwarded["agent"]["_id"]) == ("A1", "A1")
    assert ("servedBy" in queued, "agent" in queued, queued["departmentId"]) == (False, False, "D2")
    assert kinds(builder)[3:] == ["livechat_transfer_history", "ul"]
    assert builder.records().messages[-2]["transferData"]["previousDepartment"] == "D1"
    assert builder.room["queuedAt"] > builder.room["ts"]
    assert builder.take(EMMA)["departmentId"] == "D2"


def test_a_return_to_the_queue_saves_the_transfer_then_unassigns_and_sends_queued() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    queued = builder.return_to_queue()
    assert (queued["type"], "servedBy" in builder.room, "agent" in queued) == (
        "LivechatSessionQueued",
        False,
        False,
    )
    assert kinds(builder)[3:] == ["livechat_transfer_history", "ul"]
    transfer = builder.records().messages[3]
    assert (transfer["transferData"]["scope"], transfer["transferData"]["previousDepartment"]) == (
        "queue",
        "D1",
    )
    assert transfer["ts"] < builder.room["queuedAt"]
    assert builder.room["queuedAt"] > builder.room["ts"]
    with pytest.raises(RuntimeError, match="no agent"):
        builder.return_to_queue()


def test_a_manager_joining_stores_uj_alone_and_sends_nothing() -> None:
    boss = AgentUser("M1", "boss", "Big Boss", roles=("user", "livechat-manager"))
    builder = chat()
    builder.visitor_starts("Hi", agent=SMITH)
    sent = len(builder.events)
    builder.join(boss)
    assert (builder.last_events, len(builder.events)) == ([], sent)
    join = builder.records().messages[-1]
    assert (join["t"], join["msg"], join["u"]["_id"]) == ("uj", "boss", "M1")
    assert builder.room["servedBy"]["_id"] == "A1"  # no take
    manager = builder.records().user("M1")
    assert manager is not None
    assert manager["roles"] == ["user", "livechat-manager"]
    said = builder.user_says(boss, "I am looking at this one")
    assert (said["messages"][0]["agentId"], said["agent"]["_id"]) == ("M1", "A1")
    builder.forward_to_agent(EMMA)
    assert kinds(builder)[-2:] == ["ul", "ul"]  # the agent before and the manager leave
    assert [m["u"]["_id"] for m in builder.records().messages[-2:]] == ["A1", "M1"]
    with pytest.raises(RuntimeError, match="not in the room"):
        builder.user_says(boss, "still here?")


def test_close_stores_the_closing_message_just_after_closed_at_and_sends_it() -> None:
    builder = chat()
    builder.start()
    builder.take(SMITH)
    builder.visitor_says("thanks")
    close = builder.close(comment="Solved")
    closing = builder.records().messages[-1]
    assert (closing["t"], closing["msg"], closing["u"]) == (
        "livechat-close",
        "Solved",
        {"_id": "A1", "username": "smith"},  # the closer as closedBy names them
    )
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


def test_an_edit_keeps_a_hidden_copy_dated_by_the_edit_that_replaced_it() -> None:
    builder = chat()
    builder.start()
    sent = builder.visitor_says("order A-1")
    first = builder.edit_message(-1, "order A-2")
    second = builder.edit_message(-1, "order A-3", by=SMITH)
    original, copy, again = builder.records().messages[-3:]
    assert (copy["_hidden"], copy["parent"], copy["msg"], copy["ts"], "editedAt" in sent["messages"][0]) == (
        True, original["_id"], "order A-1", original["ts"], False)  # fmt: skip
    assert (again["_hidden"], again["parent"], again["msg"]) == (True, original["_id"], "order A-2")
    # cloneAndSaveAsHistoryByRecord: editedAt = the clone's time (the edit replacing that
    # version), editedBy = that editor, _updatedAt = now; the message's own editedAt a moment later.
    assert (
        copy["editedAt"]
        == copy["_updatedAt"]
        < first["messages"][0]["editedAt"]
        < again["editedAt"]
    )
    assert again["editedAt"] < second["messages"][0]["editedAt"] == original["editedAt"]
    assert (copy["editedBy"], again["editedBy"], original["editedBy"]) == (
        {"_id": "V1", "username": "guest-1"},
        {"_id": "A1", "username": "smith"},
        {"_id": "A1", "username": "smith"},
    )
    assert next(iter(copy)) == "_id"
    assert list(copy)[-4:] == ["_hidden", "parent", "editedAt", "editedBy"]
    assert list(again)[-2:] == ["_hidden", "parent"]  # a spread keeps editedAt where it was
    assert first["messages"][0]["_id"] == sent["messages"][0]["_id"]
    assert first["lastMessageAt"] == original["ts"]  # the room read when editing
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
    assert lead["lastMessageAt"] == builder.room["ts"]  # the room the message's callbacks got
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


# -- the simulator against the hand-written records of real rooms ---------------------------------

FIXTURES = Path(__file__).parent.parent / "receiver" / "fixtures"
BOSS = AgentUser("M1", "boss", "Big Boss", roles=("user", "livechat-manager"))
BOT = AgentUser("B1", "helpbot", "Help Bot", roles=("bot", "livechat-agent"))
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "Did this help?"}}]


def replay(case: str) -> ChatBuilder:
    """The story of fixture ``case``, played with ChatBuilder."""
    builder = chat(keep_history=case != "edited-without-history")
    if case in ("open-queued", "closed-by-visitor"):
        builder.visitor_starts("Hi")
        builder.visitor_says("Hello?")
        if case == "closed-by-visitor":
            builder.close(by="visitor", comment="Closed by visitor")
        return builder
    builder.visitor_starts("Hi", agent=BOT if case == "bot-agent" else SMITH)
    builder.agent_says("Hello")
    if case == "forward-to-agent":
        builder.forward_to_agent(EMMA, "billing question")
        builder.agent_says("Refunded")
        builder.visitor_says("Thanks")
    elif case == "forward-to-department":
        builder.forward_to_department("D2", EMMA, "shipping question")
        builder.agent_says("Done")
    elif case == "return-to-queue":
        builder.return_to_queue()
        builder.visitor_says("Hello?")
        builder.take(EMMA)
        builder.agent_says("Here")
    elif case == "edited-twice":
        builder.visitor_says("Great")
        builder.edit_message(1, "Hello!")
        builder.edit_message(1, "Hello!!")
        builder.agent_says("Anything else?")
    elif case == "edited-without-history":
        builder.edit_message(1, "Hello!")
        builder.visitor_says("Thanks")
    elif case == "manager-joins":
        builder.join(BOSS)
        builder.user_says(BOSS, "Yes")
        builder.visitor_says("Great")
    elif case == "bot-agent":
        builder.agent_says(None, blocks=BLOCKS)
        builder.visitor_says("Yes, thanks!")
    elif case == "plain-chat":
        builder.visitor_says("Order A-1")
        builder.agent_says("It ships tomorrow")
    builder.close(comment="Done")
    return builder


@pytest.mark.parametrize("case", sorted(path.stem for path in FIXTURES.glob("*.json")))
def test_the_builder_stores_and_sends_as_the_real_records_show(case: str) -> None:
    fixture = json.loads((FIXTURES / f"{case}.json").read_text())
    builder = replay(case)

    def stored(messages: Any) -> list[tuple[Any, ...]]:
        """Each message's type, hidden or not, and the text of a take's or a join's messages
        (a join's uj holds the username, a take's nothing)."""
        return [(m.get("t"), m.get("_hidden", False),
                 ("the username" if m["msg"] == m["u"]["username"] else m["msg"]) if m.get("t") in ("uj", "command") else None)
                for m in messages]  # fmt: skip

    def sent(payloads: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(p["type"], len(p["messages"]), p.get("departmentId") is not None, "agent" in p,
                 p["messages"][0].get("editedAt") is not None if p["type"] == "Message" else None)
                for p in payloads]  # fmt: skip

    assert stored(builder.records().messages) == stored(fixture["messages"])
    assert sent(builder.events) == sent([hook["payload"] for hook in fixture["webhooks"]])
    # A new message's event carries the lm before it, as in the real records.
    for payloads in (builder.events, [hook["payload"] for hook in fixture["webhooks"]]):
        for payload in payloads:
            if payload["type"] == "Message" and "editedAt" not in payload["messages"][0]:
                assert payload["lastMessageAt"] < payload["messages"][0]["ts"]
