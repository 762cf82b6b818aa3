"""Reconcile's inference against real Rocket.Chat records: ``expected_events`` over hand-written
fixtures (``fixtures/*.json``), each a room as Rocket.Chat stores it (the room, the visitor, the
users, every stored message in Rocket.Chat's order and form) and the webhooks Rocket.Chat sent
for it, each built with ``contracts.building`` from the records as they were when Rocket.Chat
built it, with its identity and whether what Rocket.Chat keeps lets it be rebuilt (and why).

The fixtures were written from Rocket.Chat's code, not from the simulator, so that a mistake the
simulator shares with reconcile cannot hide here; each webhook's ``why`` names the source. A case
the current ``expected.py`` gets wrong is marked ``xfail(strict=True)``: whoever fixes it removes
the mark.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from omnihook.contracts import ADMIN_SWITCHES, check_payload, event_identity, parse_event
from omnihook.contracts.building import RoomRecords
from omnihook.receiver.reconcile import WebhookSwitches, expected_events

FIXTURES = Path(__file__).parent / "fixtures"
ALL_ON = WebhookSwitches(frozenset(switch.label for switch in ADMIN_SWITCHES))
# What reconcile cannot take from the room's records of that moment: Rocket.Chat keeps these only
# as they are now. So are a take's servedBy.ts but the last one's (the uj comes a few ms after)
# and a message's _updatedAt (any later change moves it: an edit's clone, a reaction, a read).
NOW_ONLY = ("tags", "customFields", "crmData", "topic", "visitor")

# Cases the current expected.py infers wrongly, by identity.
WRONG_EVENTS = {
    "manager-joins": "manager-joins: the manager's uj (no command 'connected', servedBy unchanged) "
    "is read as a take, so reconcile expects a Chat Taken Rocket.Chat never sent",
    "edited-twice": "edited-twice: the hidden copies are dated by the edit that replaced them, so "
    "the first edit is rebuilt with the second edit's time (an identity never sent), and that "
    "edit's own time is lost: it is no rebuildable event",
}
# Cases whose rebuilt payloads differ from the sent ones (beyond what Rocket.Chat keeps only now).
WRONG_PAYLOADS = {
    "plain-chat": "plain-chat: a new message's event carries the lm before it (the room read "
    "before saving); reconcile rebuilds it with the message's own ts",
    "forward-to-agent": "forward-to-agent: a new message's lastMessageAt is rebuilt with the "
    "message's own ts, not the lm before it",
    "forward-to-department": "forward-to-department: Chat Forwarded is rebuilt without servedBy "
    "and agent (the department's new agent took it before the transfer), later messages without "
    "their agent; a new message's lastMessageAt with its own ts",
    "return-to-queue": "return-to-queue: a new message's lastMessageAt is rebuilt with the "
    "message's own ts, not the lm before it",
    "edited-twice": "edited-twice: a new message's lastMessageAt is rebuilt with the message's "
    "own ts, not the lm before it",
    "edited-without-history": "edited-without-history: a new message's lastMessageAt is rebuilt "
    "with the message's own ts, not the lm before it",
    "manager-joins": "manager-joins: a Chat Taken for the manager, and the events after the join "
    "are rebuilt as served by the manager; a new message's lastMessageAt with its own ts",
    "open-queued": "open-queued: a new message's lastMessageAt is rebuilt with the message's own "
    "ts, not the lm before it",
    "closed-by-visitor": "closed-by-visitor: a new message's lastMessageAt is rebuilt with the "
    "message's own ts, not the lm before it",
    "bot-agent": "bot-agent: a new message's lastMessageAt is rebuilt with the message's own ts, "
    "not the lm before it",
}


def load(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return fixture


def records(fixture: dict[str, Any]) -> RoomRecords:
    return RoomRecords(fixture["room"], fixture["visitor"], tuple(fixture["messages"]),
                       tuple(fixture["users"]))  # fmt: skip


def cases(wrong: dict[str, str]) -> list[Any]:
    names = sorted(path.stem for path in FIXTURES.glob("*.json"))
    return [pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=wrong[name])]
                         if name in wrong else []) for name in names]  # fmt: skip


def rebuildable(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    return [hook for hook in fixture["webhooks"] if hook["rebuildable"]]


def test_the_fixtures_are_the_ten_cases() -> None:
    assert sorted(path.stem for path in FIXTURES.glob("*.json")) == sorted(
        ["plain-chat", "forward-to-agent", "forward-to-department", "return-to-queue",
         "edited-twice", "edited-without-history", "manager-joins", "open-queued",
         "closed-by-visitor", "bot-agent"])  # fmt: skip
    assert set(WRONG_EVENTS) <= set(WRONG_PAYLOADS) <= {p.values[0] for p in cases({})}


@pytest.mark.parametrize("name", cases({}))
def test_each_fixture_holds_what_it_claims(name: str) -> None:
    """Each sent payload keeps the contract and has the identity recorded; a Chat Queued is
    rebuildable only while the room waits in the queue; the rooms' messages are Rocket.Chat's."""
    fixture = load(name)
    for hook in fixture["webhooks"]:
        body = json.dumps(hook["payload"])
        check = check_payload(body)
        assert check.ok, (hook["type"], check.lines())
        assert not check.notes, (hook["type"], check.notes)
        assert (hook["payload"]["type"], event_identity(parse_event(body))) == (
            hook["type"],
            hook["identity"],
        )
        if hook["type"] == "LivechatSessionQueued":
            assert hook["rebuildable"] is fixture["in_queue"]
        assert hook["why"]
    assert [hook["sent"] for hook in fixture["webhooks"]] == sorted(
        hook["sent"] for hook in fixture["webhooks"]
    )
    room = fixture["room"]
    assert all(m["rid"] == room["_id"] for m in fixture["messages"])
    assert fixture["in_queue"] is (bool(room.get("open")) and "servedBy" not in room)
    takes = [m for m in fixture["messages"] if m.get("t") == "command" and m["msg"] == "connected"]
    assert all(
        any(j.get("t") == "uj" and j["u"]["_id"] == c["u"]["_id"] and j["msg"] == "" for j in
            fixture["messages"]) for c in takes)  # fmt: skip


@pytest.mark.parametrize("name", cases(WRONG_EVENTS))
def test_reconcile_expects_exactly_the_rebuildable_webhooks_rocket_chat_sent(name: str) -> None:
    fixture = load(name)
    found, _ = expected_events(records(fixture), ALL_ON, in_queue=fixture["in_queue"])
    sent = Counter(hook["identity"] for hook in rebuildable(fixture))
    assert Counter(event.identity for event in found) == sent


@pytest.mark.parametrize("name", cases(WRONG_PAYLOADS))
def test_rebuilt_payloads_are_the_payloads_rocket_chat_sent(name: str) -> None:
    fixture = load(name)
    found, _ = expected_events(records(fixture), ALL_ON, in_queue=fixture["in_queue"])
    rebuilt = {event.identity: json.loads(event.body) for event in found}
    for hook in rebuildable(fixture):
        assert hook["identity"] in rebuilt, hook["identity"]
        assert comparable(rebuilt[hook["identity"]]) == comparable(hook["payload"]), hook[
            "identity"
        ]


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without what Rocket.Chat keeps only as it is now."""
    kept = {key: value for key, value in payload.items() if key not in NOW_ONLY}
    for key in ("servedBy", "oldServedBy"):
        if isinstance(kept.get(key), dict):
            kept[key] = {k: v for k, v in kept[key].items() if k != "ts"}
    kept["messages"] = [{k: v for k, v in entry.items() if k != "_updatedAt"}
                        for entry in kept.get("messages", [])]  # fmt: skip
    return kept
