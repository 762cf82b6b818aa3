"""Reconcile's inference against real Rocket.Chat records: ``expected_events`` over hand-written
fixtures (``fixtures/*.json``), each a room as Rocket.Chat stores it (the room, the visitor, the
users, every stored message in Rocket.Chat's order and form) and the webhooks Rocket.Chat sent
for it, each built with ``contracts.building`` from the records as they were when Rocket.Chat
built it, with its identity and whether what Rocket.Chat keeps lets it be rebuilt (and why).

The fixtures were written from Rocket.Chat's code, not from the simulator, so that a mistake the
simulator shares with reconcile cannot hide here; each webhook's ``why`` names the source.
Identities are compared as reconcile compares them (:func:`identities_match`: an assignment
before the latest is known only from the system message written milliseconds after it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omnihook.contracts import (
    ADMIN_SWITCHES,
    check_payload,
    event_identity,
    identities_match,
    parse_event,
)
from omnihook.contracts.building import RoomRecords
from omnihook.receiver.reconcile import ExpectedEvent, WebhookSwitches, expected_events

FIXTURES = Path(__file__).parent / "fixtures"
_TRANSFER = "livechat_transfer_history"
ALL_ON = WebhookSwitches(frozenset(switch.label for switch in ADMIN_SWITCHES))
# What reconcile cannot take from the room's records of that moment: Rocket.Chat keeps these only
# as they are now. So are a take's servedBy.ts but the last one's (the uj comes a few ms after)
# and a message's _updatedAt (any later change moves it: an edit's clone, a reaction, a read).
NOW_ONLY = ("tags", "customFields", "crmData", "topic", "visitor")


def load(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return fixture


def records(fixture: dict[str, Any]) -> RoomRecords:
    return RoomRecords(fixture["room"], fixture["visitor"], tuple(fixture["messages"]),
                       tuple(fixture["users"]))  # fmt: skip


def names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def rebuildable(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    return [hook for hook in fixture["webhooks"] if hook["rebuildable"]]


def test_the_fixtures_are_the_ten_cases() -> None:
    assert names() == sorted(
        ["plain-chat", "forward-to-agent", "forward-to-department", "return-to-queue",
         "edited-twice", "edited-without-history", "manager-joins", "open-queued",
         "closed-by-visitor", "bot-agent"])  # fmt: skip


@pytest.mark.parametrize("name", names())
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


def paired(
    hooks: list[dict[str, Any]], found: list[ExpectedEvent]
) -> list[tuple[dict[str, Any], ExpectedEvent]]:
    """Each sent webhook with the one rebuilt event whose identity matches it; fails on a webhook
    no rebuilt event matches and on a rebuilt event Rocket.Chat never sent."""
    left = list(found)
    pairs = []
    for hook in hooks:
        match = next((e for e in left if identities_match(hook["identity"], e.identity)), None)
        assert match is not None, f"not rebuilt: {hook['identity']}"
        left.remove(match)
        pairs.append((hook, match))
    assert not left, f"rebuilt but never sent: {[event.identity for event in left]}"
    return pairs


@pytest.mark.parametrize("name", names())
def test_reconcile_expects_exactly_the_rebuildable_webhooks_rocket_chat_sent(name: str) -> None:
    fixture = load(name)
    found, _ = expected_events(records(fixture), ALL_ON, in_queue=fixture["in_queue"])
    pairs = paired(rebuildable(fixture), found)
    assert [hook["type"] for hook, _ in pairs] == [event.type for _, event in pairs]


@pytest.mark.parametrize("name", names())
def test_rebuilt_payloads_are_the_payloads_rocket_chat_sent(name: str) -> None:
    fixture = load(name)
    found, _ = expected_events(records(fixture), ALL_ON, in_queue=fixture["in_queue"])
    for hook, event in paired(rebuildable(fixture), found):
        assert comparable(json.loads(event.body)) == comparable(hook["payload"]), hook["identity"]


@pytest.mark.parametrize("name", names())
def test_a_message_event_that_cannot_be_rebuilt_is_reported_with_its_identity(name: str) -> None:
    """Reconcile names each lost Message event (a version edited away) so that, if the store has
    it, it is no gap; and it names nothing Rocket.Chat did not send."""
    fixture = load(name)
    _, lost = expected_events(records(fixture), ALL_ON, in_queue=fixture["in_queue"])
    sent = [hook for hook in fixture["webhooks"]
            if hook["type"] == "Message" and not hook["rebuildable"]]  # fmt: skip
    named = [item for item in lost if item.identity is not None]
    for hook in sent:
        assert any(identities_match(hook["identity"], item.identity or "", item.within)
                   for item in named), hook["identity"]  # fmt: skip
    assert len(named) == len(sent)
    assert all(item.why for item in lost)


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without what Rocket.Chat keeps only as it is now."""
    kept = {key: value for key, value in payload.items() if key not in NOW_ONLY}
    for key in ("servedBy", "oldServedBy"):
        if isinstance(kept.get(key), dict):
            kept[key] = {k: v for k, v in kept[key].items() if k != "ts"}
    kept["messages"] = [{k: v for k, v in entry.items() if k != "_updatedAt"}
                        for entry in kept.get("messages", [])]  # fmt: skip
    return kept


def test_a_queued_room_forwarded_to_a_department_that_assigns_at_once() -> None:
    """forward-to-department without its first agent: the room waits in the queue, then is
    forwarded to a department whose agent takes it within milliseconds. Chat Forwarded and the
    messages after it carry that agent (no agent before to fall back to)."""
    fixture = load("forward-to-department")
    first_agent = "agent.smith"
    messages = [m for m in fixture["messages"]
                if m["u"].get("username") != first_agent or m.get("t") == _TRANSFER]  # fmt: skip
    room = {**fixture["room"]}
    found, lost = expected_events(
        RoomRecords(room, fixture["visitor"], tuple(messages), tuple(fixture["users"])), ALL_ON
    )
    assert lost == []
    by_type = {event.type: json.loads(event.body) for event in found}
    forwarded = by_type["LivechatSessionForwarded"]
    assert forwarded["agent"]["username"] == "emma.brown"
    assert forwarded["servedBy"]["username"] == "emma.brown"
    last_message = [json.loads(e.body) for e in found if e.type == "Message"][-1]
    assert last_message["agent"]["username"] == "emma.brown"
    assert [e.type for e in found].count("LivechatSessionTaken") == 1
