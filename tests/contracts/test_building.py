"""omnihook.contracts.building: sendToCRM in Python, one rule per test, and the samples rebuilt
from the records Rocket.Chat would hold for them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnihook.contracts import EventType, check_payload, samples
from omnihook.contracts.building import (
    ROOM_EVENT_TYPES,
    BuildSettings,
    RoomRecords,
    RoomTimeline,
    build_lead_capture,
    build_message_event,
    build_offline_message,
    build_room_event,
    guest_info,
    history,
    history_entry,
    last_message_at,
    parse_user_agent,
)

MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")  # fmt: skip
T0 = "2025-03-14T09:30:02.318Z"


def room(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"_id": "R1", "msgs": 1, "fname": "Jane Doe", "t": "l", "ts": T0, "lm": T0,
                            "v": {"_id": "V1", "username": "guest-7", "token": "tok"}, "open": True}  # fmt: skip
    return base | fields


def visitor(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"_id": "V1", "username": "guest-7", "ts": T0, "token": "tok", "name": "Jane Doe",
                            "status": "online", "userAgent": MAC_CHROME, "ip": "203.0.113.5"}  # fmt: skip
    return base | fields


def agent(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"_id": "A1", "username": "smith", "name": "Agent Smith", "status": "online",
                            "emails": [{"address": "smith@corp.example", "verified": True},
                                       {"address": "second@corp.example"}], "customFields": {}}  # fmt: skip
    return base | fields


def message(
    mid: str, ts: str, text: str = "hi", *, by: str = "visitor", **fields: Any
) -> dict[str, Any]:
    author = {"_id": "V1", "username": "guest-7", "name": "Jane Doe"} if by == "visitor" else (
        {"_id": "A1", "username": "smith", "name": "Agent Smith"})  # fmt: skip
    stored: dict[str, Any] = {"_id": mid, "rid": "R1", "msg": text, "ts": ts, "u": author, "_updatedAt": ts,
                              "mentions": [], "channels": []}  # fmt: skip
    if by == "visitor":
        stored["token"] = "tok"
    return stored | fields


def clean(payload: dict[str, Any]) -> None:
    check = check_payload(json.dumps(payload))
    assert check.ok, check.lines()
    assert not check.notes, check.notes


# -- the envelope --------------------------------------------------------------------------------


def test_the_envelope_keys_come_in_rocket_chats_order() -> None:
    payload = build_room_event(
        "LivechatSessionTaken",
        room(topic="order", tags=["vip"], livechatData={"orderId": "A-1"}, crmData='{"id":1}',
             departmentId="D1", servedBy={"_id": "A1", "username": "smith", "ts": T0}),
        visitor(), agent=agent(),
    )  # fmt: skip
    assert list(payload) == ["_id", "label", "topic", "createdAt", "lastMessageAt", "tags", "customFields",
                             "visitor", "agent", "crmData", "type", "messages", "departmentId", "servedBy"]  # fmt: skip
    assert (payload["createdAt"], payload["lastMessageAt"]) == (T0, T0)
    assert payload["customFields"] == {"orderId": "A-1"}
    clean(payload)


@pytest.mark.parametrize(
    ("fields", "label"),
    [({"fname": "Jane", "label": "Old"}, "Jane"), ({"fname": "", "label": "Old"}, "Old"),
     ({"label": "Old"}, "Old"), ({"fname": ""}, None), ({}, None)],
)  # fmt: skip
def test_label_is_fname_or_label(fields: dict[str, Any], label: str | None) -> None:
    record = room() | fields
    if "fname" not in fields:
        del record["fname"]
    info = guest_info(record, visitor())
    assert info.get("label") == label
    assert ("label" in info) is (label is not None)


@pytest.mark.parametrize(
    ("crm_data", "sent"),
    [(None, False), ("", False), ('{"id":1}', True), ({}, True), ({"id": 1}, True)],
)
def test_crm_data_only_when_set(crm_data: Any, sent: bool) -> None:
    info = guest_info(room(crmData=crm_data), visitor())
    assert ("crmData" in info) is sent
    if sent:
        assert info["crmData"] == crm_data


def test_what_the_room_does_not_hold_is_absent_and_null_stays_null() -> None:
    info = guest_info({"_id": "R1", "ts": T0, "topic": None}, {"_id": "V1", "username": "guest-7"})
    assert info == {
        "_id": "R1",
        "topic": None,
        "createdAt": T0,
        "visitor": {"_id": "V1", "username": "guest-7"},
    }


def test_dates_take_rocket_chats_form() -> None:
    info = guest_info(
        room(ts="2025-03-14T09:30:02Z", lm=datetime(2025, 3, 14, 10, tzinfo=UTC)), visitor()
    )
    assert (info["createdAt"], info["lastMessageAt"]) == (
        "2025-03-14T09:30:02.000Z",
        "2025-03-14T10:00:00.000Z",
    )


# -- the visitor ---------------------------------------------------------------------------------


def test_the_visitor_block() -> None:
    block = guest_info(
        room(),
        visitor(department="D1", livechatData={"plan": "pro"}, visitorEmails=[{"address": "jane@example.com"}],
                phone=[{"phoneNumber": "+15551234"}], host="shop.example.com", lastChat={"_id": "R0"}),
    )["visitor"]  # fmt: skip
    assert block == {"_id": "V1", "token": "tok", "name": "Jane Doe", "username": "guest-7", "department": "D1",
                     "ip": "203.0.113.5", "os": "Mac OS 10.15.7", "browser": "Chrome 131.0.0.0",
                     "customFields": {"plan": "pro"}, "email": [{"address": "jane@example.com"}],
                     "phone": [{"phoneNumber": "+15551234"}]}  # fmt: skip
    assert list(block) == list(block.keys())  # order as above, emails and phones last


def test_empty_emails_and_phones_and_an_unknown_user_agent_are_absent() -> None:
    block = guest_info(room(), visitor(visitorEmails=[], phone=None, userAgent="curl/8.5"))[
        "visitor"
    ]
    assert not {"email", "phone", "os", "browser"} & set(block)
    block = guest_info(room(), {"_id": "V1", "username": "guest-7"})["visitor"]
    assert block == {"_id": "V1", "username": "guest-7"}


@pytest.mark.parametrize(
    ("user_agent", "os", "browser"),
    [
        (MAC_CHROME, "Mac OS 10.15.7", "Chrome 131.0.0.0"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
         "Safari/537.36 Edg/131.0.2903.70", "Windows 10", "Edge 131.0.2903.70"),
        ("Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0", "Windows 7", "Firefox 115.0"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.5 Mobile/15E148 Safari/604.1", "iOS 17.5", "Mobile Safari 17.5"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "iOS 17.5", "Chrome 131.0.6778.73"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 "
         "Mobile Safari/537.36", "Android 14", "Mobile Chrome 131.0.6778.104"),
        ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
         "Chrome/122.0.0.0 Mobile Safari/537.36", "Android 14", "Samsung Internet 26.0"),
        ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "Android 14", "Mobile Firefox 133.0"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
         "Safari/605.1.15", "Mac OS 10.15.7", "Safari 17.5"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", "Mac OS 10.15",
         "Firefox 133.0"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
         "OPR/115.0.0.0", "Linux x86_64", "Opera 115.0.0.0"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
         "Safari/537.36", "Chromium OS 14541.0.0", "Chrome 131.0.0.0"),
        ("Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko", "Windows 10", "IE 11.0"),
        # ua-parser-js finds a name but no version: JavaScript writes "undefined".
        ("Mozilla/5.0 (iPad; U; like Mac OS X) Gecko", "iOS undefined", None),
        ("curl/8.5.0", None, None),
    ],
)  # fmt: skip
def test_user_agents_read_as_ua_parser_js_reads_them(
    user_agent: str, os: str | None, browser: str | None
) -> None:
    assert parse_user_agent(user_agent) == (os, browser)


# -- the agent -----------------------------------------------------------------------------------


def test_the_agent_block_keeps_only_fields_marked_for_integrations_and_the_first_email() -> None:
    settings = BuildSettings(agent_custom_fields=frozenset({"team", "region"}))
    block = guest_info(
        room(), visitor(), agent=agent(customFields={"team": "B2", "salary": 1}), settings=settings
    )["agent"]
    assert block == {"_id": "A1", "username": "smith", "name": "Agent Smith", "customFields": {"team": "B2"},
                     "email": "smith@corp.example"}  # fmt: skip


def test_agent_custom_fields_are_empty_when_none_is_marked_and_absent_when_the_user_has_none() -> (
    None
):
    assert (
        guest_info(room(), visitor(), agent=agent(customFields={"salary": 1}))["agent"][
            "customFields"
        ]
        == {}
    )
    without = agent()
    del without["customFields"], without["emails"]
    assert guest_info(room(), visitor(), agent=without)["agent"] == {
        "_id": "A1",
        "username": "smith",
        "name": "Agent Smith",
    }


def test_no_agent_block_without_the_user_even_when_the_room_is_served() -> None:
    records = RoomRecords(
        room(servedBy={"_id": "gone", "username": "old", "ts": T0}), visitor(), users=(agent(),)
    )
    payload = records.event("LivechatSessionTaken")
    assert "agent" not in payload
    assert payload["servedBy"] == {"_id": "gone", "username": "old", "ts": T0}
    clean(payload)


# -- the history ---------------------------------------------------------------------------------

STORED = [
    message("M3", "2025-03-14T09:31:00.000Z", "third"),
    message("M1", "2025-03-14T09:30:04.000Z", "first"),
    {**message("Mc", "2025-03-14T09:30:50.001Z", "connected", by="agent"), "t": "command"},
    {**message("Mj", "2025-03-14T09:30:50.002Z", "smith", by="agent"), "t": "uj"},
    message("M2", "2025-03-14T09:30:55.000Z", "second, edited", by="agent",
            editedAt="2025-03-14T09:31:30.000Z", editedBy={"_id": "A1", "username": "smith"}),
    {**message("Mh", "2025-03-14T09:30:55.000Z", "second", by="agent"), "_hidden": True, "parent": "M2"},
    {**message("Mn", "2025-03-14T09:30:57.000Z", "Pricing - https://shop.example.com/pricing", by="visitor"),
     "t": "livechat_navigation_history", "u": {"_id": "rocket.cat", "username": "rocket.cat"},
     "navigation": {"page": {"change": "url", "title": "Pricing", "location": {"href": "https://shop.example.com/pricing"}},
                    "token": "tok"}},
    {**message("Mt", "2025-03-14T09:31:05.000Z", "in a thread"), "tmid": "M1"},
    {**message("Mx", "2025-03-14T09:31:10.000Z", "", by="agent"), "t": "livechat_transfer_history",
     "transferData": {"scope": "queue"}},
    {**message("Mz", "2025-03-14T09:32:00.000Z", "Resolved", by="agent"), "t": "livechat-close"},
]  # fmt: skip


def test_the_history_is_visible_messages_by_ts_without_system_messages_but_the_close() -> None:
    entries = history(STORED, "guest-7")
    assert [e["_id"] for e in entries] == ["M1", "M2", "M3", "Mt", "Mz"]  # thread replies stay in
    assert entries[-1]["closingMessage"] is True
    assert [e.get("closingMessage") for e in entries[:-1]] == [None] * 4


def test_navigation_messages_only_when_the_settings_say_so() -> None:
    entries = history(STORED, "guest-7", settings=BuildSettings(navigation_in_history=True))
    assert [e["_id"] for e in entries] == ["M1", "M2", "Mn", "M3", "Mt", "Mz"]
    navigation = entries[2]
    assert navigation["agentId"] == "rocket.cat"  # rocket.cat is not the visitor
    assert navigation["navigation"]["page"]["title"] == "Pricing"


def test_history_up_to_a_moment() -> None:
    assert [e["_id"] for e in history(STORED, "guest-7", at="2025-03-14T09:30:55.000Z")] == [
        "M1",
        "M2",
    ]
    assert history(STORED, "guest-7", at="2025-03-14T09:30:00.000Z") == []


def test_an_entry_has_rocket_chats_keys_in_rocket_chats_order() -> None:
    entry = history_entry(STORED[4], "guest-7")
    assert entry == {"u": {"_id": "A1", "username": "smith", "name": "Agent Smith"}, "_id": "M2", "username": "smith",
                     "msg": "second, edited", "ts": "2025-03-14T09:30:55.000Z", "rid": "R1",
                     "editedAt": "2025-03-14T09:31:30.000Z", "agentId": "A1", "_updatedAt": "2025-03-14T09:30:55.000Z"}  # fmt: skip
    assert list(entry) == [
        "u",
        "_id",
        "username",
        "msg",
        "ts",
        "rid",
        "editedAt",
        "agentId",
        "_updatedAt",
    ]


def test_agent_id_whenever_the_author_is_not_the_visitor_by_username() -> None:
    same_name = message("M9", T0, by="agent") | {"u": {"_id": "other", "username": "guest-7"}}
    assert "agentId" not in history_entry(same_name, "guest-7")
    assert history_entry(message("M9", T0), "guest-8")["agentId"] == "V1"


def test_msg_is_the_text_or_the_json_of_the_blocks() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Évaluez 👍"}}]
    entry = history_entry(message("M9", T0, "", by="agent", blocks=blocks), "guest-7")
    assert entry["msg"] == '[{"type":"section","text":{"type":"mrkdwn","text":"Évaluez 👍"}}]'
    assert entry["blocks"] == blocks
    assert list(entry)[:5] == ["u", "_id", "username", "msg", "blocks"]
    with_text = history_entry(message("M9", T0, "Rate us", by="agent", blocks=blocks), "guest-7")
    assert with_text["msg"] == "Rate us"
    empty_blocks = history_entry(message("M9", T0, "", blocks=[]), "guest-7")
    assert (empty_blocks["msg"], "blocks" in empty_blocks) == ("[]", False)  # JSON.stringify([])
    assert "msg" not in history_entry(message("M9", T0, ""), "guest-7")


def test_a_file_message() -> None:
    file = {"_id": "F1", "name": "my receipt.pdf", "type": "application/pdf", "size": 48213}
    attachments = [{"title": "my receipt.pdf", "type": "file", "size": 48213}]
    stored = message("M9", T0, "", file=file, files=[file], attachments=attachments)
    entry = history_entry(
        stored, "guest-7", settings=BuildSettings(site_url="https://chat.example.com/")
    )
    assert list(entry) == [
        "u",
        "_id",
        "username",
        "ts",
        "rid",
        "file",
        "attachments",
        "fileUpload",
        "_updatedAt",
    ]
    assert entry["fileUpload"] == {"publicFilePath": "https://chat.example.com/file-upload/F1/my%20receipt.pdf",
                                   "type": "application/pdf", "size": 48213}  # fmt: skip
    assert "fileUpload" not in history_entry(
        stored, "guest-7"
    )  # no Site_Url: as when the upload is gone
    clean(
        build_message_event(
            room(), visitor(), stored, settings=BuildSettings(site_url="https://c.example")
        )
    )


def test_last_message_at_a_moment() -> None:
    assert last_message_at(room(), STORED, "2025-03-14T09:30:56.000Z") == "2025-03-14T09:30:55.000Z"
    assert last_message_at(room(), STORED, "2025-03-14T09:30:03.000Z") == T0  # a new room: lm = ts
    # system messages, hidden copies and edits do not move lm
    assert last_message_at(room(), STORED, "2025-03-14T09:59:00.000Z") == "2025-03-14T09:31:05.000Z"


# -- the events ----------------------------------------------------------------------------------

SERVED = {"_id": "A1", "username": "smith", "ts": "2025-03-14T09:30:50.000Z"}
EXTRA = {
    "LivechatSessionStart": ["departmentId"],
    "LivechatSessionQueued": ["departmentId"],
    "LivechatSessionTaken": ["departmentId", "servedBy"],
    "LivechatSessionForwarded": ["departmentId", "servedBy", "oldServedBy"],
    "LivechatSession": ["departmentId", "servedBy", "closedAt", "closedBy", "closer"],
    "LivechatEdit": [],
}


@pytest.mark.parametrize("kind", ROOM_EVENT_TYPES)
def test_each_room_event_adds_its_fields_after_the_messages(kind: str) -> None:
    closed = room(departmentId="D1", servedBy=SERVED, closedAt="2025-03-14T09:32:00.000Z",
                  closedBy={"_id": "A1", "username": "smith"}, closer="user")  # fmt: skip
    payload = build_room_event(kind, closed, visitor(), agent=agent(), messages=STORED,
                               old_served_by={"_id": "A0", "username": "old", "ts": T0})  # fmt: skip
    keys = list(payload)
    assert keys[keys.index("messages") + 1 :] == EXTRA[kind]
    assert payload["type"] == kind
    assert [m["_id"] for m in payload["messages"]] == ["M1", "M2", "M3", "Mt", "Mz"]
    clean(payload)


def test_forwarded_to_a_department_and_an_open_room_leave_out_what_does_not_apply() -> None:
    payload = build_room_event(
        EventType.CHAT_FORWARDED, room(departmentId="D2"), visitor(), old_department_id="D1"
    )
    assert list(payload)[-2:] == ["departmentId", "oldDepartmentId"]
    assert "servedBy" not in payload
    assert "oldServedBy" not in payload
    close = build_room_event("LivechatSession", room(), visitor())
    assert list(close)[-1] == "messages"
    clean(payload)
    clean(close)


def test_events_not_built_from_the_whole_room_are_refused() -> None:
    with pytest.raises(ValueError, match="build_message_event"):
        build_room_event("Message", room(), visitor())


def test_a_message_event_carries_exactly_that_message() -> None:
    payload = build_message_event(
        room(lm="2025-03-14T09:31:05.000Z"), visitor(), STORED[4], agent=agent()
    )
    assert [m["_id"] for m in payload["messages"]] == ["M2"]
    assert list(payload)[-2:] == ["type", "messages"]
    at_the_time = build_message_event(
        room(), visitor(), STORED[1], messages=STORED, at=STORED[1]["ts"]
    )
    assert at_the_time["lastMessageAt"] == STORED[1]["ts"]
    clean(payload)


def test_no_message_event_for_system_messages_but_the_close_and_navigation() -> None:
    with pytest.raises(ValueError, match="'uj'"):
        build_message_event(room(), visitor(), STORED[3])
    with pytest.raises(ValueError, match="livechat_navigation_history"):
        build_message_event(room(), visitor(), STORED[6])
    navigation = build_message_event(
        room(), visitor(), STORED[6], settings=BuildSettings(navigation_in_history=True)
    )
    closing = build_message_event(room(), visitor(), STORED[-1])
    assert closing["messages"][0]["closingMessage"] is True
    clean(navigation)
    clean(closing)


def test_lead_capture_and_offline_message() -> None:
    lead = build_lead_capture(
        room(), visitor(visitorEmails=[{"address": "jane@example.com"}]), agent=agent()
    )
    assert lead["messages"] == []
    assert lead["visitor"]["email"] == [{"address": "jane@example.com"}]
    offline = build_offline_message(
        None, "jane@example.com", "Call me", datetime(2025, 3, 14, 22, tzinfo=UTC)
    )
    assert offline == {"type": "LivechatOfflineMessage", "sentAt": "2025-03-14T22:00:00.000Z",
                       "visitor": {"name": None, "email": "jane@example.com"}, "message": "Call me"}  # fmt: skip
    clean(lead)
    clean(offline)


def test_settings_from_rocket_chats_values() -> None:
    read = BuildSettings.from_settings({
        "Livechat_Visitor_navigation_as_a_message": True,
        "Send_visitor_navigation_history_livechat_webhook_request": True,
        "Accounts_CustomFields": json.dumps({"team": {"type": "text", "sendToIntegrations": True},
                                             "salary": {"type": "text", "sendToIntegrations": False},
                                             "region": {"type": "select"}}),
        "Site_Url": "https://chat.example.com",
    })  # fmt: skip
    assert read == BuildSettings(True, frozenset({"team"}), "https://chat.example.com")
    assert (
        BuildSettings.from_settings({"Accounts_CustomFields": "{not json", "Site_Url": ""})
        == BuildSettings()
    )
    only_one = {"Livechat_Visitor_navigation_as_a_message": True}
    assert not BuildSettings.from_settings(only_one).navigation_in_history


# -- the samples, rebuilt ----------------------------------------------------------------------


def sample_records() -> tuple[
    dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, dict[str, Any]]
]:
    """What Rocket.Chat would hold for the chat the samples tell (messages as stored)."""
    close = samples.sample("chat-close")
    v = close["visitor"]
    visitor_record = {"_id": v["_id"], "username": v["username"], "ts": "2025-03-14T09:30:02.000Z", "token": v["token"],
                      "name": v["name"], "department": v["department"], "status": "online",
                      "visitorEmails": v["email"], "phone": v["phone"], "livechatData": v["customFields"],
                      "userAgent": MAC_CHROME, "ip": v["ip"]}  # fmt: skip
    users = {}
    for a in (samples.sample("chat-taken")["agent"], close["agent"]):
        users[a["_id"]] = {"_id": a["_id"], "username": a["username"], "name": a["name"], "status": "online",
                           "emails": [{"address": a["email"], "verified": True}], "customFields": {}}  # fmt: skip
    stored: list[dict[str, Any]] = []
    for entry in close["messages"]:
        record = {"_id": entry["_id"], "rid": entry["rid"], "msg": entry.get("msg", ""), "ts": entry["ts"],
                  "u": entry["u"], "_updatedAt": entry["_updatedAt"]}  # fmt: skip
        if "agentId" not in entry:
            record["token"] = v["token"]
        if "editedAt" in entry:
            record |= {
                "editedAt": entry["editedAt"],
                "editedBy": {"_id": entry["u"]["_id"], "username": entry["u"]["username"]},
            }
        if entry.get("closingMessage"):
            record["t"] = "livechat-close"
        for key in ("file", "attachments"):
            if key in entry:
                record[key] = entry[key]
        stored.append(record)
    room_record = {"_id": close["_id"], "fname": "Jane Doe", "t": "l", "ts": close["createdAt"],
                   "lm": close["lastMessageAt"], "livechatData": close["customFields"], "departmentId": close["departmentId"],
                   "v": {"_id": v["_id"], "username": v["username"], "token": v["token"]}}  # fmt: skip
    return room_record, visitor_record, stored, users


def without_file_token(payload: dict[str, Any]) -> dict[str, Any]:
    """Rocket.Chat's file JWT cannot be rebuilt."""
    for entry in payload.get("messages", []):
        if "fileUpload" in entry:
            entry["fileUpload"]["publicFilePath"] = entry["fileUpload"]["publicFilePath"].split(
                "?"
            )[0]
    return payload


def test_the_samples_are_what_building_makes_from_their_records() -> None:
    room_record, visitor_record, stored, users = sample_records()
    settings = BuildSettings(site_url="https://chat.example.com")
    crm = '{"ok":true,"contactId":"crm-7731"}'
    taken = samples.sample("chat-taken")
    forwarded = samples.sample("chat-forwarded")
    close = samples.sample("chat-close")
    smith, emma = users[taken["agent"]["_id"]], users[close["agent"]["_id"]]

    def records(**fields: Any) -> RoomRecords:
        return RoomRecords(room_record | fields, visitor_record, stored, tuple(users.values()))

    first_ts = stored[0]["ts"]
    start = records().event("LivechatSessionStart", settings=settings, at=first_ts)
    assert start == samples.sample("chat-start")
    queued = records(crmData=crm).event("LivechatSessionQueued", settings=settings, at=first_ts)
    assert queued == samples.sample("chat-queued")
    assert records(crmData=crm, servedBy=taken["servedBy"]).event(
        "LivechatSessionTaken", settings=settings, at=taken["servedBy"]["ts"]) == taken  # fmt: skip
    assert without_file_token(records(crmData=crm, servedBy=forwarded["servedBy"]).event(
        "LivechatSessionForwarded", settings=settings, at=forwarded["servedBy"]["ts"],
        old_served_by=forwarded["oldServedBy"])) == without_file_token(forwarded)  # fmt: skip
    closed = records(crmData=crm, servedBy=close["servedBy"], tags=close["tags"], closedAt=close["closedAt"],
                     closedBy=close["closedBy"], closer="user")  # fmt: skip
    assert without_file_token(
        closed.event("LivechatSession", settings=settings)
    ) == without_file_token(close)
    edited = records(
        crmData=crm,
        servedBy=close["servedBy"],
        tags=["shipping", "vip", "refund"],
        closedAt=close["closedAt"],
    )
    assert without_file_token(
        edited.event("LivechatEdit", settings=settings)
    ) == without_file_token(samples.sample("chat-edit"))
    served_by_smith = records(crmData=crm, servedBy=taken["servedBy"])
    for name, index in (("visitor-message", 2), ("agent-message", 1)):
        assert served_by_smith.message_event(
            stored[index]["_id"], at=stored[index]["ts"]
        ) == samples.sample(name)
    assert served_by_smith.lead_capture(at=stored[2]["ts"]) == samples.sample("lead-capture")
    assert smith is not emma


def test_everything_built_keeps_the_contract() -> None:
    room_record, visitor_record, stored, users = sample_records()
    records = RoomRecords(room_record | {"servedBy": samples.sample("chat-close")["servedBy"], "closedAt": T0},
                          visitor_record, [*stored, *STORED], tuple(users.values()))  # fmt: skip
    settings = BuildSettings(navigation_in_history=True, site_url="https://chat.example.com")
    for kind in ROOM_EVENT_TYPES:
        clean(records.event(kind, settings=settings))
    for stored_message in [*stored, *STORED]:
        if stored_message.get("t") in (None, "livechat-close", "livechat_navigation_history"):
            clean(records.message_event(stored_message, settings=settings))
    clean(records.lead_capture(settings=settings))


# -- many events of one room: the timeline -------------------------------------------------------

MOMENTS = [None, T0, "2025-03-14T09:30:03.000Z", "2025-03-14T09:30:04.000Z",
           "2025-03-14T09:30:50.001Z", "2025-03-14T09:30:55.000Z", "2025-03-14T09:31:05.000Z",
           datetime(2025, 3, 14, 9, 31, 30, tzinfo=UTC), "2025-03-14T09:59:00.000Z"]  # fmt: skip


@pytest.mark.parametrize("at", MOMENTS)
def test_a_timeline_gives_what_the_messages_give(at: str | datetime | None) -> None:
    timeline = RoomTimeline(STORED)
    assert list(timeline) == STORED
    assert len(timeline) == len(STORED)
    assert timeline[2] is STORED[2]
    for settings in (BuildSettings(), BuildSettings(navigation_in_history=True)):
        for username in ("guest-7", "smith"):
            assert history(timeline, username, settings=settings, at=at) == history(
                STORED, username, settings=settings, at=at
            )
    if at is not None:
        assert last_message_at(room(), timeline, at) == last_message_at(room(), STORED, at)
    for kind in ROOM_EVENT_TYPES:
        assert build_room_event(kind, room(), visitor(), agent=agent(), messages=timeline, at=at) == (
            build_room_event(kind, room(), visitor(), agent=agent(), messages=STORED, at=at))  # fmt: skip
    for stored in (STORED[1], STORED[4], STORED[-1]):
        assert build_message_event(room(), visitor(), stored, messages=timeline, at=at) == (
            build_message_event(room(), visitor(), stored, messages=STORED, at=at))  # fmt: skip
    assert build_lead_capture(room(), visitor(), messages=timeline, at=at) == build_lead_capture(
        room(), visitor(), messages=STORED, at=at
    )


def test_a_timelines_entries_are_the_callers_to_change() -> None:
    file_message = message(
        "Mf", "2025-03-14T09:30:10.000Z", "", file={"_id": "F1", "name": "a.pdf"}
    )
    timeline = RoomTimeline([*STORED, file_message])
    settings = BuildSettings(site_url="https://chat.example.com")
    first = history(timeline, "guest-7", settings=settings)
    for entry in first:
        entry["msg"] = "changed"
        entry.get("fileUpload", {})["publicFilePath"] = "changed"
    assert history(timeline, "guest-7", settings=settings) == history(
        [*STORED, file_message], "guest-7", settings=settings
    )


def test_records_build_from_their_timeline_made_once() -> None:
    records = RoomRecords(room(), visitor(), tuple(STORED), (agent(),))
    assert records.timeline is records.timeline
    assert records.event("LivechatEdit", at="2025-03-14T09:31:00.000Z")["messages"] == history(
        STORED, "guest-7", at="2025-03-14T09:31:00.000Z"
    )
    assert records.message_event("M3", at="2025-03-14T09:31:00.000Z")["lastMessageAt"] == (
        "2025-03-14T09:31:00.000Z")  # fmt: skip


def test_every_event_of_a_room_of_two_thousand_messages_builds_in_linear_time() -> None:
    # As reconcile rebuilds a room: one Message event per message and room events, each as of
    # its moment. Passing the messages themselves, each event reads them all (about 4 s here).
    stored = [message(f"M{n}", format_ts(n), f"line {n}", by="visitor" if n % 2 else "agent")
              for n in range(2000)]  # fmt: skip
    timeline = RoomTimeline(stored)
    started = time.perf_counter()
    for each in stored:
        build_message_event(room(), visitor(), each, messages=timeline, at=each["ts"])
    for each in stored[::400]:
        build_room_event(
            "LivechatSessionTaken", room(), visitor(), messages=timeline, at=each["ts"]
        )
    assert time.perf_counter() - started < 2.0
    last = stored[-1]
    assert build_message_event(room(), visitor(), last, messages=timeline, at=last["ts"]) == (
        build_message_event(room(), visitor(), last, messages=stored, at=last["ts"]))  # fmt: skip


def format_ts(seconds: int) -> str:
    moment = datetime(2025, 3, 14, 9, 31, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
