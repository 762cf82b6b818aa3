"""The fake Rocket.Chat REST API: every answer shaped as Rocket.Chat's OpenAPI definitions
(RocketChat/Rocket.Chat-Open-API, the lines cited) and the research notes
(docs/reference/rocketchat-rest-api.md) say; filters, paging, permissions, the rate limiter.
The schemas below are transcribed from the OpenAPI files, with ``required`` added for what
Rocket.Chat always writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import pytest
from pytest_httpserver import HTTPServer

from omnihook.contracts.building import RoomRecords
from omnihook.receiver.rest import RocketChatApi, RocketChatRefused
from omnihook.sender.chat import AgentUser, ChatBuilder, VisitorProfile
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.sender.simulate import Simulation

STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
DATE = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
USER_REF = {"type": "object", "required": ["_id", "username"],
            "properties": {"_id": STRING, "username": STRING, "name": STRING}}  # fmt: skip
MESSAGE = {  # omnichannel.yaml 15499-15617 (livechat/:rid/messages), messaging.yaml 3485-3541
    "type": "object",
    "required": ["_id", "rid", "msg", "ts", "u", "_updatedAt"],
    "properties": {"_id": STRING, "rid": STRING, "ts": DATE, "msg": STRING, "groupable": BOOLEAN, "t": STRING,
                   "file": {"type": "object", "properties": {"_id": STRING, "name": STRING, "type": STRING,
                                                             "size": INTEGER, "format": STRING}},
                   "files": {"type": "array"}, "attachments": {"type": "array", "items": {"type": "object"}},
                   "u": USER_REF, "_updatedAt": DATE, "mentions": {"type": "array"}, "channels": {"type": "array"},
                   "token": STRING, "alias": STRING, "editedAt": DATE, "_hidden": BOOLEAN, "parent": STRING},
}  # fmt: skip
ROOM = {  # omnichannel.yaml 2740-2840 (GET livechat/rooms), IOmnichannelRoom
    "type": "object",
    "required": ["_id", "t", "ts", "fname", "v", "msgs", "lm", "_updatedAt"],
    "properties": {"_id": STRING, "msgs": INTEGER, "usersCount": INTEGER, "lm": DATE, "fname": STRING,
                   "t": {"const": "l"}, "ts": DATE,
                   "v": {"type": "object", "required": ["_id", "username", "token"],
                         "properties": {"_id": STRING, "username": STRING, "token": STRING, "status": STRING}},
                   "servedBy": {"type": "object", "required": ["_id", "username", "ts"],
                                "properties": {"_id": STRING, "username": STRING, "ts": DATE}},
                   "cl": BOOLEAN, "open": BOOLEAN, "waitingResponse": BOOLEAN, "departmentId": STRING,
                   "_updatedAt": DATE, "livechatData": {"type": "object"},
                   "tags": {"type": "array", "items": STRING}, "closedAt": DATE,
                   "closedBy": {"type": "object", "required": ["_id", "username"]},
                   "closer": {"enum": ["user", "visitor", "bot"]},
                   "department": {"type": "object", "required": ["_id", "name"]}},
}  # fmt: skip
ROOMS = {"type": "object", "required": ["rooms", "count", "offset", "total", "success"],
         "properties": {"rooms": {"type": "array", "items": ROOM}, "count": INTEGER, "offset": INTEGER,
                        "total": INTEGER, "success": {"const": True}}, "additionalProperties": False}  # fmt: skip
MESSAGES = {"type": "object", "required": ["messages", "offset", "count", "total", "success"],
            "properties": {"messages": {"type": "array", "items": MESSAGE}, "offset": INTEGER, "count": INTEGER,
                           "total": INTEGER, "success": {"const": True}}, "additionalProperties": False}  # fmt: skip
SYNC = {  # messaging.yaml 3474-3550
    "type": "object", "required": ["result", "success"], "additionalProperties": False,
    "properties": {"success": {"const": True}, "result": {
        "type": "object", "required": ["updated", "deleted"], "additionalProperties": False,
        "properties": {"updated": {"type": "array", "items": MESSAGE},
                       "deleted": {"type": "array", "items": {"type": "object", "required": ["_id", "_deletedAt"],
                                                              "additionalProperties": False}}}}},
}  # fmt: skip
VISITOR = {  # omnichannel.yaml 13378-13432 (visitors.info)
    "type": "object", "required": ["visitor", "success"], "additionalProperties": False,
    "properties": {"success": {"const": True}, "visitor": {
        "type": "object", "required": ["_id", "username", "ts", "_updatedAt", "token"],
        "properties": {"_id": STRING, "username": STRING, "status": STRING, "ts": DATE, "_updatedAt": DATE,
                       "name": STRING, "department": STRING, "token": STRING, "userAgent": STRING, "ip": STRING,
                       "phone": {"type": "array", "items": {"type": "object", "required": ["phoneNumber"]}},
                       "visitorEmails": {"type": "array", "items": {"type": "object", "required": ["address"]}},
                       "livechatData": {"type": "object"}}}},
}  # fmt: skip
PAGES = {  # omnichannel.yaml 13688-13740 (visitors.pagesVisited)
    "type": "object", "required": ["pages", "count", "offset", "total", "success"], "additionalProperties": False,
    "properties": {"count": INTEGER, "offset": INTEGER, "total": INTEGER, "success": {"const": True},
                   "pages": {"type": "array", "items": {
                       "type": "object", "required": ["_id", "t", "ts", "msg", "u", "navigation", "rid", "_updatedAt"],
                       "properties": {"t": {"const": "livechat_navigation_history"}, "groupable": BOOLEAN,
                                      "expireAt": INTEGER, "ts": DATE, "u": USER_REF,
                                      "navigation": {"type": "object", "required": ["page", "token"],
                                                     "properties": {"page": {"type": "object",
                                                                             "required": ["change", "title", "location"]}}}}}}},
}  # fmt: skip
USER = {  # user-management.yaml 2249-2290 (users.info)
    "type": "object", "required": ["user", "success"], "additionalProperties": False,
    "properties": {"success": {"const": True}, "user": {
        "type": "object", "required": ["_id", "username", "canViewAllInfo"],
        "properties": {"_id": STRING, "createdAt": DATE, "username": STRING, "type": STRING, "status": STRING,
                       "active": BOOLEAN, "name": STRING, "utcOffset": INTEGER, "canViewAllInfo": BOOLEAN,
                       "roles": {"type": "array", "items": STRING}, "customFields": {"type": "object"},
                       "emails": {"type": "array", "items": {"type": "object", "required": ["address"],
                                                             "properties": {"address": STRING, "verified": BOOLEAN}}}}}},
}  # fmt: skip
SETTING = {"type": "object", "required": ["_id", "value", "success"], "additionalProperties": False,  # settings.yaml 500-516
           "properties": {"_id": STRING, "value": {}, "success": {"const": True}}}  # fmt: skip
SENT = {"type": "object", "required": ["message", "success"], "additionalProperties": False,  # messaging.yaml 2876-2905
        "properties": {"success": {"const": True}, "message": {
            "type": "object", "required": ["_id", "rid", "msg", "ts", "u", "unread", "mentions", "channels", "_updatedAt"],
            "properties": {"rid": STRING, "msg": STRING, "ts": DATE, "u": USER_REF, "unread": BOOLEAN,
                           "mentions": {"type": "array"}, "channels": {"type": "array"}, "_updatedAt": DATE}}}}  # fmt: skip
FAILURE = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": STRING},
}


def shaped(answer: httpx.Response, schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = answer.json()
    jsonschema.validate(document, schema)
    return document


class Clock:
    def __init__(self) -> None:
        self.now = 1_741_942_800.0  # 2025-03-14T09:00:00Z

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rocketchat(httpserver: HTTPServer, clock: Clock) -> FakeRocketChat:
    return FakeRocketChat(httpserver, clock=clock)


@pytest.fixture
def client(rocketchat: FakeRocketChat) -> Iterator[httpx.Client]:
    headers = {"X-User-Id": rocketchat.user_id, "X-Auth-Token": rocketchat.auth_token}
    with httpx.Client(base_url=f"{rocketchat.url}/api/v1", headers=headers) as http:
        yield http


SIMULATION = Simulation(seed=4, navigation=True)


@pytest.fixture
def chats(rocketchat: FakeRocketChat) -> list[RoomRecords]:
    """Forty simulated chats' records in the fake (offline messages leave none)."""
    rocketchat.apply(SIMULATION.settings)
    found = []
    for chat in SIMULATION.chats(40):
        chat.payloads()
        records = chat.records()
        if records is not None:
            rocketchat.add_records(records)
            found.append(records)
    return found


def build(room_id: str, *, started: str = "2025-03-14T09:00:00.000Z", close: bool = False,
          queued: bool = False, department: str = "D1", tags: list[str] | None = None,
          custom: dict[str, Any] | None = None, name: str = "Jane Doe") -> ChatBuilder:  # fmt: skip
    visitor = VisitorProfile(f"V-{room_id}", f"tok-{room_id}", f"guest-{room_id}", name=name)
    builder = ChatBuilder(room_id, visitor, started_at=datetime.fromisoformat(started), department_id=department,
                          tags=tags, custom_fields=custom)  # fmt: skip
    builder.start()
    builder.visitor_says("hi")
    if not queued:
        builder.take(
            AgentUser(
                "A1", "smith", "Agent Smith", "smith@corp.example", {"team": "B2", "secret": 1}
            )
        )
    if close:
        builder.close(comment="done")
    return builder


# -- livechat/rooms ------------------------------------------------------------------------------


def test_rooms_answer_as_rocket_chat_does(
    rocketchat: FakeRocketChat, client: httpx.Client, chats: list[RoomRecords]
) -> None:
    rocketchat.add_department(chats[0].room["departmentId"], "Support")
    answer = shaped(client.get("livechat/rooms", params={"sort": '{"ts":1}'}), ROOMS)
    assert (answer["count"], answer["offset"], answer["total"]) == (len(chats), 0, len(chats))
    assert [r["_id"] for r in answer["rooms"]] == [
        c.room_id for c in chats
    ]  # oldest first, asked for
    assert answer["rooms"][0] == {
        **chats[0].room,
        "department": {"_id": chats[0].room["departmentId"], "name": "Support"},
    }
    assert list(answer) == ["rooms", "count", "offset", "total", "success"]
    newest_first = shaped(client.get("livechat/rooms"), ROOMS)  # Rocket.Chat's default sort: ts -1
    assert [r["_id"] for r in newest_first["rooms"]] == [c.room_id for c in reversed(chats)]


def test_rooms_page_by_offset_and_count_capped_at_100(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    for n in range(230):
        rocketchat.add_room({"_id": f"R{n:03d}", "t": "l", "ts": f"2025-03-14T09:{n // 60:02d}:{n % 60:02d}.000Z",
                             "fname": "x", "v": {"_id": "V", "username": "g", "token": "t"}, "msgs": 0,
                             "lm": "2025-03-14T09:00:00.000Z", "_updatedAt": "2025-03-14T09:00:00.000Z"})  # fmt: skip
    default = client.get("livechat/rooms").json()
    assert (default["count"], default["total"]) == (50, 230)  # API_Default_Count
    capped = client.get(
        "livechat/rooms", params={"count": 500, "offset": 200, "sort": '{"ts":1}'}
    ).json()
    assert (capped["count"], capped["offset"], capped["total"]) == (30, 200, 230)
    assert capped["rooms"][0]["_id"] == "R200"
    pages = [
        client.get("livechat/rooms", params={"count": 500, "offset": offset}).json()["count"]
        for offset in (0, 100)
    ]
    assert pages == [100, 100]  # API_Upper_Count_Limit
    assert (
        client.get("livechat/rooms", params={"count": 0}).json()["count"] == 230
    )  # API_Allow_Infinite_Count


def test_rooms_filter_by_dates_state_agent_department_tags_fields_and_name(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    builders = [
        build(
            "open", started="2025-03-14T09:00:00+00:00", tags=["vip"], custom={"orderId": "A-10042"}
        ),
        build(
            "queued",
            started="2025-03-14T10:00:00+00:00",
            queued=True,
            department="D2",
            name="Omar Haddad",
        ),
        build("closed", started="2025-03-14T11:00:00+00:00", close=True, tags=["sales"]),
    ]
    for builder in builders:
        rocketchat.add_records(builder.records())
    rocketchat.add_room({**builders[0].records().room, "_id": "held", "onHold": True})

    def ids(**params: str) -> list[str]:
        return [
            r["_id"]
            for r in shaped(
                client.get("livechat/rooms", params={"sort": '{"ts":1}', **params}), ROOMS
            )["rooms"]
        ]

    assert ids(createdAt='{"start":"2025-03-14T10:00:00.000Z"}') == [
        "queued",
        "closed",
    ]  # inclusive
    assert ids(createdAt='{"end":"2025-03-14T10:00:00.000Z"}') == ["open", "held", "queued"]
    closed_at = builders[2].room["closedAt"]
    assert ids(closedAt=json.dumps({"start": closed_at, "end": closed_at})) == ["closed"]
    assert ids(open="true") == ["open"]  # open, served, not on hold
    assert ids(open="false") == ["closed"]
    assert ids(queued="true") == ["queued"]
    assert ids(onhold="true") == ["held"]
    assert ids(**{"agents[]": "A1"}) == ["open", "held", "closed"]
    assert ids(departmentId="D2") == ["queued"]
    assert ids(**{"tags[]": "sales"}) == ["closed"]
    assert ids(customFields='{"orderId":"a-100"}') == ["open", "held"]  # a case-insensitive regex
    assert ids(roomName="omar") == ["queued"]
    assert ids(roomName='"Omar"') == []  # quoted: exact


def test_rooms_refuse_what_rocket_chat_refuses(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    unknown = shaped(client.get("livechat/rooms", params={"since": "1h"}), FAILURE, 400)
    assert unknown == {"success": False, "error": "must NOT have additional properties [invalid-params]",
                       "errorType": "invalid-params"}  # fmt: skip
    bad_date = shaped(
        client.get("livechat/rooms", params={"createdAt": '{"start":"yesterday"}'}), FAILURE, 400
    )
    assert bad_date["error"] == 'The "createdAt.start" query parameter must be a valid date.'
    bad_fields = shaped(client.get("livechat/rooms", params={"customFields": "[1]"}), FAILURE, 400)
    assert bad_fields["error"] == 'The "customFields" query parameter must be a valid JSON.'
    bad_sort = shaped(client.get("livechat/rooms", params={"sort": "ts"}), FAILURE, 400)
    assert bad_sort["errorType"] == "error-invalid-sort"


def test_rooms_need_view_livechat_rooms_or_an_agent_asking_for_their_own(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    rocketchat.revoke(rocketchat.user_id, "view-livechat-rooms")
    assert shaped(client.get("livechat/rooms"), FAILURE, 403) == {
        "success": False,
        "error": "unauthorized",
    }
    assert rocketchat.denied == [("/api/v1/livechat/rooms", "view-livechat-rooms")]
    own = client.get("livechat/rooms", params={"agents[]": rocketchat.user_id})
    assert own.status_code == 200


# -- a room's messages ---------------------------------------------------------------------------


def edited_chat() -> ChatBuilder:
    builder = build("R-edit", close=False)
    builder.visitor_says("my order is A-1")
    builder.edit_message(-1, "my order is A-2")
    builder.visitor_navigates("Pricing", "https://shop.example.com/pricing")
    builder.forward_to_agent(AgentUser("A2", "emma", "Emma Brown"))
    builder.close(comment="done")
    return builder


def test_room_messages_are_chat_messages_the_close_and_hidden_copies(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    builder = edited_chat()
    rocketchat.add_records(builder.records())
    answer = shaped(
        client.get("livechat/R-edit/messages", params={"sort": '{"ts":1}', "count": 2}), MESSAGES
    )
    everything = client.get("livechat/R-edit/messages", params={"sort": '{"ts":1}'}).json()[
        "messages"
    ]
    assert (answer["count"], answer["total"], len(answer["messages"])) == (
        2,
        4,
        2,
    )  # count: the size asked
    assert [(m.get("t"), m.get("_hidden")) for m in everything] == [
        (None, None), (None, None), (None, True), ("livechat-close", None)]  # fmt: skip
    assert everything[2]["parent"] == everything[1]["_id"]  # the copy before the edit, same ts
    assert (everything[2]["msg"], everything[1]["msg"]) == ("my order is A-1", "my order is A-2")
    last = client.get("livechat/R-edit/messages", params={"count": 1}).json()["messages"]
    assert last[0]["t"] == "livechat-close"  # default sort: newest first
    found = client.get("livechat/R-edit/messages", params={"searchTerm": "A-2"}).json()
    assert [m["msg"] for m in found["messages"]] == ["my order is A-2"]


def test_room_messages_errors(rocketchat: FakeRocketChat, client: httpx.Client) -> None:
    rocketchat.add_records(build("R1").records())
    assert shaped(client.get("livechat/nope/messages"), FAILURE, 400) == {
        "success": False,
        "error": "invalid-room",
    }
    rocketchat.revoke(rocketchat.user_id, "view-livechat-rooms")
    assert shaped(client.get("livechat/R1/messages"), FAILURE, 400)["error"] == "not-allowed"
    rocketchat.revoke(rocketchat.user_id, "view-l-room")
    refused = shaped(client.get("livechat/R1/messages"), FAILURE, 403)
    assert (
        refused["error"]
        == "User does not have the permissions required for this action [error-unauthorized]"
    )
    assert rocketchat.denied[-1] == ("/api/v1/livechat/R1/messages", "view-l-room")


def test_sync_messages_include_system_messages_and_deletions(
    rocketchat: FakeRocketChat, client: httpx.Client, clock: Clock
) -> None:
    builder = edited_chat()
    rocketchat.add_records(builder.records())
    answer = shaped(
        client.get(
            "chat.syncMessages",
            params={"roomId": "R-edit", "lastUpdate": "1970-01-01T00:00:00.000Z"},
        ),
        SYNC,
    )
    updated = answer["result"]["updated"]
    visible = [m for m in builder.records().messages if not m.get("_hidden")]
    assert sorted(m["_id"] for m in updated) == sorted(m["_id"] for m in visible)
    assert [m["ts"] for m in updated] == sorted((m["ts"] for m in updated), reverse=True)
    assert {m.get("t") for m in updated} >= {"livechat-started", "command", "uj", "ul", "livechat_transfer_history",
                                             "livechat_navigation_history", "livechat-close", None}  # fmt: skip
    since = builder.records().message(visible[-2]["_id"])["_updatedAt"]
    assert [
        m["_id"]
        for m in client.get(
            "chat.syncMessages", params={"roomId": "R-edit", "lastUpdate": since}
        ).json()["result"]["updated"]
    ] == [visible[-1]["_id"]]
    clock.now += 3 * 3600  # noon, after the chat
    rocketchat.delete_message(visible[1]["_id"])
    deleted = client.get(
        "chat.syncMessages", params={"roomId": "R-edit", "lastUpdate": since}
    ).json()["result"]["deleted"]
    assert deleted == [{"_id": visible[1]["_id"], "_deletedAt": "2025-03-14T12:00:00.000Z"}]


def test_sync_messages_errors(rocketchat: FakeRocketChat, client: httpx.Client) -> None:
    rocketchat.add_records(build("R1").records())
    assert shaped(client.get("chat.syncMessages", params={"lastUpdate": "2025-01-01"}), FAILURE, 400) == {
        "success": False, "error": 'The required "roomId" query param is missing. [error-roomId-param-not-provided]',
        "errorType": "error-roomId-param-not-provided"}  # fmt: skip
    missing = client.get("chat.syncMessages", params={"roomId": "R1"}).json()
    assert missing["errorType"] == "error-lastUpdate-param-not-provided"
    invalid = client.get("chat.syncMessages", params={"roomId": "R1", "lastUpdate": "soon"}).json()
    assert (
        invalid["error"]
        == 'The "lastUpdate" query parameter must be a valid date. [error-roomId-param-invalid]'
    )
    gone = client.get("chat.syncMessages", params={"roomId": "nope", "lastUpdate": "2025-01-01"})
    assert (gone.status_code, gone.json()["error"]) == (400, "Not allowed [error-not-allowed]")


# -- visitors, users, settings -------------------------------------------------------------------


def test_visitor_info_and_pages_visited(rocketchat: FakeRocketChat, client: httpx.Client) -> None:
    builder = edited_chat()
    rocketchat.add_records(builder.records())
    visitor = shaped(
        client.get("livechat/visitors.info", params={"visitorId": "V-R-edit"}), VISITOR
    )
    assert visitor["visitor"] == builder.records().visitor
    pages = shaped(client.get("livechat/visitors.pagesVisited/R-edit"), PAGES)
    assert (pages["count"], pages["total"], pages["pages"][0]["navigation"]["page"]["title"]) == (
        1,
        1,
        "Pricing",
    )
    assert shaped(client.get("livechat/visitors.info", params={"visitorId": "nope"}), FAILURE, 400) == {
        "success": False, "error": "visitor-not-found"}  # fmt: skip
    assert client.get("livechat/visitors.info").json() == {
        "success": False, "error": "must have required property 'visitorId' [invalid-params]", "errorType": "invalid-params"}  # fmt: skip
    assert client.get("livechat/visitors.pagesVisited/nope").json()["error"] == "invalid-room"
    rocketchat.revoke(rocketchat.user_id, "view-l-room")
    assert client.get("livechat/visitors.info", params={"visitorId": "V-R-edit"}).status_code == 403


def test_users_info_shows_emails_and_custom_fields_to_who_may_see_them(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    rocketchat.add_records(build("R1").records())
    rocketchat.settings["Accounts_CustomFields"] = json.dumps(
        {
            "team": {"type": "text", "public": True, "sendToIntegrations": True},
            "secret": {"type": "text"},
        }
    )
    full = shaped(client.get("users.info", params={"userId": "A1"}), USER)["user"]
    assert (full["emails"], full["customFields"], full["canViewAllInfo"]) == (
        [{"address": "smith@corp.example", "verified": True}], {"team": "B2", "secret": 1}, True)  # fmt: skip
    assert (
        shaped(client.get("users.info", params={"username": "smith"}), USER)["user"]["_id"] == "A1"
    )
    rocketchat.revoke(rocketchat.user_id, "view-full-other-user-info")
    limited = shaped(client.get("users.info", params={"userId": "A1"}), USER)["user"]
    assert ("emails" in limited, limited["customFields"], limited["canViewAllInfo"]) == (
        False,
        {"team": "B2"},
        False,
    )
    assert (
        shaped(client.get("users.info", params={"userId": "nope"}), FAILURE, 400)["error"]
        == "User not found."
    )
    assert client.get("users.info").json()["errorType"] == "invalid-params"


def test_settings(rocketchat: FakeRocketChat, client: httpx.Client) -> None:
    assert shaped(client.get("settings/Livechat_webhook_on_close"), SETTING) == {
        "_id": "Livechat_webhook_on_close", "value": True, "success": True}  # fmt: skip
    rocketchat.settings["Livechat_webhook_on_capture"] = False
    assert client.get("settings/Livechat_webhook_on_capture").json()["value"] is False
    assert shaped(client.get("settings/Nope"), {"const": {"success": False}}, 400)
    rocketchat.hidden_settings.add("Livechat_secret_token")
    assert client.get("settings/Livechat_secret_token").status_code == 400
    rocketchat.revoke(rocketchat.user_id, "view-privileged-setting")
    assert client.get("settings/Livechat_webhook_on_close").status_code == 403
    assert rocketchat.denied == [
        ("/api/v1/settings/Livechat_webhook_on_close", "view-privileged-setting")
    ]


# -- chat.sendMessage ----------------------------------------------------------------------------


def test_send_message_stores_the_message_and_refuses_a_used_id(
    rocketchat: FakeRocketChat, client: httpx.Client
) -> None:
    rocketchat.add_records(build("R1").records())
    sent = shaped(
        client.post(
            "chat.sendMessage", json={"message": {"rid": "R1", "msg": "Shipped!", "_id": "reply-1"}}
        ),
        SENT,
    )
    assert (sent["message"]["_id"], sent["message"]["u"]["_id"]) == ("reply-1", rocketchat.user_id)
    assert rocketchat.messages["reply-1"]["msg"] == "Shipped!"
    assert rocketchat.rooms["R1"]["lm"] == sent["message"]["ts"]
    again = shaped(
        client.post(
            "chat.sendMessage", json={"message": {"rid": "R1", "msg": "x", "_id": "reply-1"}}
        ),
        FAILURE,
        400,
    )
    assert again["error"].startswith(
        "E11000 duplicate key error collection: rocketchat.rocketchat_message index: _id_"
    )
    assert client.post("chat.sendMessage", json={"message": {"rid": "nope", "msg": "x"}}).json() == {
        "success": False, "error": "error-invalid-room"}  # fmt: skip
    assert client.post("chat.sendMessage", json={}).json()["errorType"] == "error-invalid-params"


async def test_replies_through_the_receivers_client(rocketchat: FakeRocketChat) -> None:
    rocketchat.add_records(build("R1").records())
    api = RocketChatApi(rocketchat.url, rocketchat.user_id, rocketchat.auth_token)
    try:
        assert (await api.send_message("R1", "Hello", "reply-7"))["_id"] == "reply-7"
        assert await api.send_message("R1", "Hello", "reply-7") == {}  # already posted
    finally:
        await api.aclose()
    assert [m["_id"] for m in rocketchat.sent] == ["reply-7"]


# -- authentication, rate limit, outages, deletions ----------------------------------------------


@pytest.mark.parametrize("rocketchat_8", [False, True])
def test_without_credentials_401(httpserver: HTTPServer, rocketchat_8: bool) -> None:
    rocketchat = FakeRocketChat(httpserver, rocketchat_8=rocketchat_8)
    answer = httpx.get(f"{rocketchat.url}/api/v1/livechat/rooms",
                       headers={"X-User-Id": rocketchat.user_id, "X-Auth-Token": "wrong"})  # fmt: skip
    body = {"success": False, "error": "You must be logged in to do this."}
    if not rocketchat_8:
        body |= {"status": "error", "message": "You must be logged in to do this."}
    assert (answer.status_code, answer.json()) == (401, body)
    rocketchat.revoke(rocketchat.user_id, "view-l-room")
    refused = httpx.get(f"{rocketchat.url}/api/v1/livechat/visitors.info", params={"visitorId": "x"},
                        headers={"X-User-Id": rocketchat.user_id, "X-Auth-Token": rocketchat.auth_token})  # fmt: skip
    code = "error-forbidden" if rocketchat_8 else "error-unauthorized"
    assert (
        refused.json()["error"]
        == f"User does not have the permissions required for this action [{code}]"
    )


def test_the_rate_limiter(rocketchat: FakeRocketChat, client: httpx.Client, clock: Clock) -> None:
    assert (
        "x-ratelimit-limit" not in client.get("settings/Site_Url").headers
    )  # off until switched on
    rocketchat.limit_rate(calls=2, interval_ms=60_000)
    answers = [client.get("settings/Site_Url") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"2"}
    reset = int(answers[2].headers["x-ratelimit-reset"])
    assert reset == int(clock.now * 1000) + 60_000  # an absolute epoch in milliseconds
    assert "retry-after" not in answers[2].headers
    assert answers[2].json() == {"success": False, "error": "Error, too many requests. Please slow down. You must wait "
                                 "60 seconds before trying this endpoint again. [error-too-many-requests]"}  # fmt: skip
    assert client.get("livechat/rooms").status_code == 200  # per route
    clock.now += 60
    assert client.get("settings/Site_Url").status_code == 200  # a new window
    rocketchat.grant(rocketchat.user_id, "api-bypass-rate-limit")
    assert all(client.get("settings/Site_Url").status_code == 200 for _ in range(5))


def test_an_outage_and_a_deleted_room(rocketchat: FakeRocketChat, client: httpx.Client) -> None:
    rocketchat.add_records(build("R1").records())
    rocketchat.fail(503, times=2)
    assert [client.get("livechat/rooms").status_code for _ in range(3)] == [503, 503, 200]
    rocketchat.delete_room("R1")
    assert client.get("livechat/rooms").json()["total"] == 0
    assert client.get("livechat/R1/messages").json()["error"] == "invalid-room"
    assert rocketchat.room_messages("R1") == []


async def test_the_receivers_client_reads_everything_through_the_pages(
    rocketchat: FakeRocketChat, chats: list[RoomRecords]
) -> None:
    for n in range(250):  # more rooms than two pages
        rocketchat.add_room(
            {
                **chats[0].room,
                "_id": f"extra{n:03d}",
                "ts": f"2025-03-15T00:{n // 60:02d}:{n % 60:02d}.000Z",
            }
        )
    api = RocketChatApi(rocketchat.url, rocketchat.user_id, rocketchat.auth_token)
    try:
        rooms = await api.livechat_rooms(created={"start": "2025-03-14T00:00:00.000Z"})
        assert len(rooms) == len(chats) + 250
        records = chats[0]
        messages = await api.room_messages(records.room_id)
        assert [m["_id"] for m in messages] == [m["_id"] for m in sorted(records.messages, key=lambda m: m["ts"])
                                                 if not m.get("t") or m["t"] == "livechat-close"]  # fmt: skip
        system = await api.system_messages(records.room_id)
        assert {m["_id"] for m in system} == {
            m["_id"] for m in records.messages if not m.get("_hidden")
        }
        assert await api.visitor(records.visitor["_id"]) == records.visitor
        agent_id = records.users[0]["_id"]
        user = await api.user(agent_id)
        assert user is not None
        assert user["customFields"] == {"team": records.users[0]["customFields"]["team"]}
        assert await api.setting("Livechat_webhook_on_forward") is True
        rocketchat.revoke(rocketchat.user_id, "view-livechat-rooms")
        with pytest.raises(RocketChatRefused, match="view-livechat-rooms"):
            await api.livechat_rooms()
    finally:
        await api.aclose()


def test_records_keep_dates_in_rocket_chats_form(rocketchat: FakeRocketChat) -> None:
    rocketchat.add_room({"_id": "R9", "t": "l", "ts": datetime(2025, 3, 14, 9, tzinfo=UTC)})
    assert rocketchat.rooms["R9"]["ts"] == "2025-03-14T09:00:00.000Z"
