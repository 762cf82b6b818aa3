"""The simulator: realistic, valid for every payload generation, legal sequences, deterministic,
crmData echoed; and `omnihook simulate` with its report. Checked by the kit's webhook_sink."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from omnihook.contracts import EventType, check_payload, parse_event
from omnihook.contracts.cli import root
from omnihook.sender import RetryPolicy
from omnihook.sender.chat import VERSIONS, Version
from omnihook.sender.simulate import Simulation, play
from omnihook.sender.testing import WebhookSink

LIFECYCLE = {"LivechatSessionStart": 0, "LivechatSessionQueued": 1, "LivechatSessionTaken": 2,
             "LivechatSessionForwarded": 2, "LivechatSession": 3, "LivechatEdit": 4}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_every_payload_of_every_generation_keeps_the_contract(version: Version) -> None:
    kinds: Counter[str] = Counter()
    for chat in Simulation(seed=3, version=version).chats(150):
        for payload in chat.payloads():
            check = check_payload(json.dumps(payload))
            assert check.ok, (payload["type"], check.lines())
            assert not check.notes, check.notes
            kinds[payload["type"]] += 1
    assert set(kinds) == {member.value for member in EventType}  # every kind of event occurs


def test_the_generations_differ_as_rocket_chat_did() -> None:
    # A take, not the start: Chat Start carries no message (the room is created before it).
    def first_taken(version: Version) -> dict[str, object]:
        for chat in Simulation(seed=5, version=version).chats(50):
            for payload in chat.payloads():
                visitor = payload.get("visitor", {})
                if (
                    payload["type"] == "LivechatSessionTaken"
                    and isinstance(visitor, dict)
                    and not visitor.get("phone")
                    and payload["messages"]  # an auto-assigned take carries none
                ):
                    return payload
        raise AssertionError("no take without a phone")

    current, legacy, docs = (first_taken(v) for v in ("current", "legacy", "docs"))
    assert "phone" not in current["visitor"]  # type: ignore[operator]
    assert legacy["visitor"]["phone"] is None  # type: ignore[index]
    assert docs["visitor"]["phone"] is None  # type: ignore[index]
    assert "rid" not in docs["messages"][0]  # type: ignore[index]
    assert legacy["messages"][0]["closingMessage"] is False  # type: ignore[index]


def test_each_chat_is_a_legal_sequence() -> None:
    for chat in Simulation(seed=11).chats(300):
        payloads = chat.payloads()
        if chat.room_id is None:
            assert [p["type"] for p in payloads] == ["LivechatOfflineMessage"]
            continue
        types = [p["type"] for p in payloads]
        # The visitor's first message opens the room: Start, then an auto-assigned take or the
        # queue, then the message (neither Taken nor Queued carries it).
        assert types[:3] in (["LivechatSessionStart", "LivechatSessionTaken", "Message"],
                             ["LivechatSessionStart", "LivechatSessionQueued", "Message"])  # fmt: skip
        assert payloads[1]["messages"] == []
        close = types.index("LivechatSession")
        assert all(t == "LivechatEdit" for t in types[close + 1 :])  # nothing but edits after close
        first_take = types.index("LivechatSessionTaken") if "LivechatSessionTaken" in types else 0
        requeued = [  # a forward into a department's queue queues the room again
            n for n, t in enumerate(types) if t == "LivechatSessionQueued" and n > first_take > 0
        ]
        for n in requeued:
            assert types[n - 1] == "LivechatSessionForwarded"
        stages = [LIFECYCLE[t] for n, t in enumerate(types)
                  if t in LIFECYCLE and t != "LivechatSessionForwarded" and n not in requeued]  # fmt: skip
        taken_seen = False
        for payload in payloads:
            event = parse_event(payload)
            if payload["type"] == "LivechatSessionTaken":
                taken_seen = True
            if payload["type"] == "Message" and event.is_agent_message:  # type: ignore[union-attr]
                assert taken_seen, "an agent spoke before taking the chat"
        assert stages == sorted(stages)
        histories = [
            len(p["messages"]) for p in payloads if p["type"] not in ("Message", "LeadCapture")
        ]
        assert histories == sorted(histories)  # the history only grows
        taken = [p for p in payloads if p["type"] == "LivechatSessionTaken"]
        assert all("servedBy" in p and "agent" in p for p in taken)


def test_the_same_seed_gives_the_same_chats() -> None:
    first = [chat.payloads() for chat in Simulation(seed=42).chats(20)]
    again = [chat.payloads() for chat in Simulation(seed=42).chats(20)]
    other = [chat.payloads() for chat in Simulation(seed=43).chats(20)]
    assert first == again
    assert first != other


async def test_play_echoes_each_rooms_last_answer_as_crm_data(webhook_sink: WebhookSink) -> None:
    webhook_sink.respond(200, '{"contactId":"c-9"}')
    chats = Simulation(seed=1).chats(12)
    report = await play(
        chats, webhook_sink.url, token="sim", concurrency=4, policy=RetryPolicy.no_retry()
    )
    webhook_sink.token = None
    webhook_sink.assert_valid()
    total = sum(len(chat.steps) for chat in chats)
    assert (report.events, report.ok, len(webhook_sink.deliveries)) == (total, total, total)
    by_room: dict[str, list[object]] = {}
    for delivery in webhook_sink.deliveries:
        document = json.loads(delivery.body)
        if "_id" in document:
            by_room.setdefault(document["_id"], []).append(document.get("crmData"))
    for crm_data in by_room.values():
        assert crm_data[0] is None  # nothing answered yet for the room
        # Events built in the same step as the first (Start, Taken or Queued, the first
        # message) were built before any answer came back; every later step echoes it.
        assert set(crm_data[1:3]) <= {None, '{"contactId":"c-9"}'}
        assert set(crm_data[3:]) <= {'{"contactId":"c-9"}'}
    assert all(d.headers["x-rocketchat-livechat-token"] == "sim" for d in webhook_sink.deliveries)


def test_simulate_command_reports_what_happened(webhook_sink: WebhookSink) -> None:
    webhook_sink.respond(500, "down", times=3)
    result = CliRunner().invoke(
        root,
        [
            "simulate",
            webhook_sink.url,
            "--chats",
            "5",
            "--seed",
            "9",
            "--policy",
            "no-retry",
            "--version",
            "legacy",
        ],
        env={"OMNIHOOK_TOKEN": "t", "COLUMNS": "120"},
    )
    assert result.exit_code == 1
    rows = dict(
        (cell.strip() for cell in line.strip("│").split("│"))  # type: ignore[misc]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    )
    total = sum(len(chat.steps) for chat in Simulation(seed=9, version="legacy").chats(5))
    assert rows["events sent"] == str(total)
    assert rows["answered 200"] == str(total - 3)
    assert rows["failed: HTTP 500"] == "3"
    assert rows["retries"] == "0"
    assert rows["latency p99"].endswith(" ms")
