"""The simulator drives the fake Rocket.Chat: each simulated chat is recorded there as Rocket.Chat
would hold it, webhooks are dropped on purpose (a seeded share, or all while the receiver is
down) and reported exactly, and what the fake serves is enough to rebuild a dropped webhook."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from omnihook.contracts.building import BuildSettings, RoomRecords, history
from omnihook.sender import Drops, RetryPolicy
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.sender.simulate import Dropped, SimulatedChat, Simulation, SimulationReport, play
from omnihook.sender.testing import WebhookSink

SEED, CHATS = 8, 60
SIMULATION = Simulation(seed=SEED, navigation=True)
DOWN = (SIMULATION.start + timedelta(minutes=3), SIMULATION.start + timedelta(minutes=5))


@pytest.fixture
def rocketchat(httpserver: HTTPServer) -> FakeRocketChat:
    fake = FakeRocketChat(httpserver)
    fake.apply(SIMULATION.settings)
    return fake


async def run(
    url: str, rocketchat: FakeRocketChat | None, concurrency: int
) -> tuple[list[SimulatedChat], SimulationReport]:
    chats = SIMULATION.chats(CHATS)
    report = await play(chats, url, rocketchat=rocketchat, concurrency=concurrency, policy=RetryPolicy.no_retry(),
                        drops=Drops(share=0.1, seed=5, down=DOWN))  # fmt: skip
    return chats, report


def bare(payload: dict[str, Any]) -> str:
    """A payload without crmData (the endpoint's answers), as comparable text."""
    return json.dumps({k: v for k, v in payload.items() if k != "crmData"}, sort_keys=True)


def key(dropped: Dropped) -> tuple[Any, ...]:
    return (
        dropped.room_id,
        dropped.number,
        dropped.label,
        dropped.type,
        dropped.at,
        dropped.reason,
    )


async def test_play_records_every_chat_and_drops_exactly_what_it_reports(
    rocketchat: FakeRocketChat, webhook_sink: WebhookSink
) -> None:
    chats, report = await run(webhook_sink.url, rocketchat, concurrency=8)
    total = sum(len(chat.steps) for chat in chats)
    assert report.events == len(webhook_sink.deliveries) == total - len(report.dropped)
    assert report.ok == report.events
    webhook_sink.assert_valid()
    assert {d.reason for d in report.dropped} == {"down", "share"}
    assert all(DOWN[0] <= d.at < DOWN[1] for d in report.dropped if d.reason == "down")
    share = [d for d in report.dropped if d.reason == "share"]
    assert 0.05 < len(share) / (total - sum(d.reason == "down" for d in report.dropped)) < 0.15

    # Exactly the webhooks reported are missing from what the endpoint received.
    fresh = {chat.key: chat.payloads() for chat in SIMULATION.chats(CHATS)}
    delivered = [bare(json.loads(d.body)) for d in webhook_sink.deliveries]
    assert sorted(delivered + [bare(d.payload) for d in report.dropped]) == sorted(
        bare(p) for payloads in fresh.values() for p in payloads
    )
    for dropped in report.dropped:
        chat_key = dropped.room_id or next(k for k, p in fresh.items() if p == [dropped.payload])
        assert bare(dropped.payload) == bare(fresh[chat_key][dropped.number])
        assert dropped.type == dropped.payload["type"]

    # The fake holds each room chat as Rocket.Chat would; offline messages leave nothing.
    room_chats = [chat for chat in chats if chat.builder is not None]
    assert set(rocketchat.rooms) == {chat.room_id for chat in room_chats}
    assert len(room_chats) < len(chats)
    for chat in room_chats:
        records = chat.records()
        assert records is not None
        assert (
            rocketchat.rooms[records.room_id] == records.room
        )  # crmData included: the last answer
        assert rocketchat.visitors[records.visitor["_id"]] == records.visitor
        assert rocketchat.room_messages(records.room_id) == list(records.messages)


async def test_the_same_seed_drops_the_same_webhooks_whatever_the_concurrency(
    httpserver: HTTPServer, webhook_sink: WebhookSink
) -> None:
    _, one = await run(webhook_sink.url, None, concurrency=1)
    _, many = await run(webhook_sink.url, None, concurrency=16)
    assert sorted(map(key, one.dropped), key=str) == sorted(map(key, many.dropped), key=str)
    assert one.dropped


async def test_receiver_down_for_the_whole_run_drops_everything(webhook_sink: WebhookSink) -> None:
    chats = SIMULATION.chats(5)
    forever = (SIMULATION.start - timedelta(days=1), SIMULATION.start + timedelta(days=1))
    report = await play(chats, webhook_sink.url, drops=Drops(down=forever))
    assert (report.events, len(webhook_sink.deliveries)) == (0, 0)
    assert len(report.dropped) == sum(len(chat.steps) for chat in chats)


# -- what the fake serves is enough to rebuild a dropped webhook ----------------------------------


def served_records(api: httpx.Client, room_id: str) -> RoomRecords:
    """A room's records as a bot reads them through the REST API."""
    [room] = [
        r
        for r in api.get("livechat/rooms", params={"count": 0}).json()["rooms"]
        if r["_id"] == room_id
    ]
    room.pop("department", None)
    every = api.get(
        "chat.syncMessages", params={"roomId": room_id, "lastUpdate": "1970-01-01T00:00:00.000Z"}
    )
    hidden = [
        m
        for m in api.get(f"livechat/{room_id}/messages", params={"count": 0}).json()["messages"]
        if m.get("_hidden")
    ]
    visitor = api.get("livechat/visitors.info", params={"visitorId": room["v"]["_id"]}).json()[
        "visitor"
    ]
    served = room.get("servedBy")
    users = (
        [api.get("users.info", params={"userId": served["_id"]}).json()["user"]] if served else []
    )
    return RoomRecords(room, visitor, [*every.json()["result"]["updated"], *hidden], users)


async def test_dropped_messages_and_closes_rebuild_from_the_fake(
    rocketchat: FakeRocketChat, webhook_sink: WebhookSink
) -> None:
    _, report = await run(webhook_sink.url, rocketchat, concurrency=8)
    settings = BuildSettings.from_settings(rocketchat.settings)
    assert settings == SIMULATION.settings
    checked = rebuild_dropped(rocketchat, report.dropped, settings)
    assert all(checked.values()), checked


def rebuild_dropped(
    rocketchat: FakeRocketChat, dropped_webhooks: list[Dropped], settings: BuildSettings
) -> dict[str, int]:
    """Rebuild each dropped Message and Close from what the fake serves; compare with what was
    due. Returns how many of each were compared."""
    checked = {"Message": 0, "LivechatSession": 0}
    headers = {"X-User-Id": rocketchat.user_id, "X-Auth-Token": rocketchat.auth_token}
    served: dict[str, RoomRecords] = {}
    with httpx.Client(base_url=f"{rocketchat.url}/api/v1", headers=headers) as api:
        for dropped in dropped_webhooks:
            if dropped.room_id is None or dropped.type not in checked:
                continue
            if dropped.room_id not in served:
                served[dropped.room_id] = served_records(api, dropped.room_id)
            records = served[dropped.room_id]
            sent = dropped.payload
            if dropped.type == "Message":
                entry = sent["messages"][0]
                stored = records.message(entry["_id"])
                if stored.get("editedAt") != entry.get("editedAt"):
                    continue  # edited since: the records hold the later text (a hidden copy the earlier)
                # A new message's event carries the room read before it was saved; an edit's,
                # the room read when editing.
                written = datetime.fromisoformat(entry["ts"]) - timedelta(milliseconds=1)
                rebuilt = records.message_event(
                    stored, settings=settings, at=entry.get("editedAt") or written
                )
                assert rebuilt["messages"] == sent["messages"]
                assert rebuilt["lastMessageAt"] == sent["lastMessageAt"]
            else:
                rebuilt = records.event("LivechatSession", settings=settings)
                changing = {"crmData", "tags"}  # answers, and an edit after close may change tags
                assert {k: v for k, v in rebuilt.items() if k not in changing} == {
                    k: v for k, v in sent.items() if k not in changing}  # fmt: skip
            checked[dropped.type] += 1
    return checked


def test_histories_at_each_moment_match_what_was_sent() -> None:
    """``at`` rebuilds a room event's history as the chat had it, from the final records."""
    for chat in SIMULATION.chats(30):
        if chat.builder is None:
            continue
        built = [step.build() for step in chat.steps]
        assert built == chat.builder.events
        records = chat.records()
        assert records is not None
        edited = {m["_id"] for m in records.messages if m.get("editedAt")}
        for at, payload in zip(chat.builder.moments, chat.builder.events, strict=True):
            if payload["type"] in ("Message", "LeadCapture"):
                continue
            rebuilt = history(
                records.messages, records.visitor["username"], settings=SIMULATION.settings, at=at
            )
            assert [m["_id"] for m in rebuilt] == [m["_id"] for m in payload["messages"]]
            assert [m for m in rebuilt if m["_id"] not in edited] == [
                m for m in payload["messages"] if m["_id"] not in edited
            ]
