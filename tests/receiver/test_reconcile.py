"""Nothing missing: simulated chats whose webhooks were partly dropped (a tenth at random, all of
them while the receiver was down), then ``reconcile``, against the fake Rocket.Chat. Reconcile
finds exactly what was dropped, rebuilds each once, and the SQL CRM ends as a run with nothing
dropped; a late real delivery or a second run changes nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from omnihook.contracts import (
    ADMIN_SWITCHES,
    TOKEN_HEADER,
    event_identity,
    identities_match,
    parse_event,
)
from omnihook.receiver import HandlingPolicy, Router, Worker, create_app
from omnihook.receiver.crm import SqlCrmAdapter
from omnihook.receiver.reconcile import (
    Reconciler,
    ReconcileReport,
    WebhookSwitches,
    expected_events,
    read_build_settings,
    read_switches,
)
from omnihook.receiver.rest import RocketChatApi
from omnihook.sender import Drops, RetryPolicy
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.sender.simulate import Simulation, SimulationReport, play
from omnihook.store import Store

from ..conftest import UvicornThread

TOKEN = "reconcile-token"
SIMULATION = Simulation(seed=21)
CHATS = 300
DOWN = (SIMULATION.start + timedelta(minutes=12), SIMULATION.start + timedelta(minutes=16))
SINCE = (SIMULATION.start - timedelta(hours=1)).timestamp()
UNTIL = (SIMULATION.start + timedelta(days=1)).timestamp()
# What reconcile rebuilds: the others leave no trace in Rocket.Chat (see reconcile.expected).
REBUILT = {"LivechatSessionStart", "LivechatSessionTaken", "LivechatSessionForwarded",
           "LivechatSession", "Message"}  # fmt: skip
ALL_ON = WebhookSwitches(frozenset(switch.label for switch in ADMIN_SWITCHES))


class Receiver:
    """``omnihook serve``'s default handling (the SQL CRM) behind a real server, on its own
    SQLite file; the test's own store and worker handle what the server stored."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}?synchronous=off"
        self.server = UvicornThread(create_app(Router(), tokens=[TOKEN], store=self.url,
                                               run_worker=False))  # fmt: skip
        self.store = Store(self.url)
        self.router = Router()
        SqlCrmAdapter(self.store).register(self.router)
        self.worker = Worker(self.store, self.router, policy=HandlingPolicy(attempts=1),
                             clock=lambda: 4e9)  # fmt: skip

    @property
    def webhook(self) -> str:
        return f"{self.server.url}/rocketchat"

    async def handle(self) -> None:
        while await self.worker.drain():
            pass

    def crm(self) -> dict[str, Any]:
        """What the SQL CRM holds, without the times of its own writes."""
        database = sqlite3.connect(self.url.split("///")[1].split("?")[0])
        try:
            return {
                "contacts": sorted(database.execute(
                    "SELECT contact_key, name, first_name, last_name, email, phone, department, "
                    "custom_fields FROM crm_contacts").fetchall()),
                "conversations": sorted(database.execute(
                    "SELECT room_id, status, department_id, agent, tags, custom_fields, started_at, "
                    "closed_at, closer FROM crm_conversations").fetchall()),
                "messages": sorted(database.execute(
                    "SELECT room_id, message_key, ts, author, author_kind, text, edited "
                    "FROM crm_messages").fetchall()),
            }  # fmt: skip
        finally:
            database.close()


@pytest.fixture
async def receivers(tmp_path: Path) -> AsyncIterator[tuple[Receiver, Receiver]]:
    complete, dropping = Receiver(tmp_path / "complete.db"), Receiver(tmp_path / "dropping.db")
    with complete.server, dropping.server:
        async with complete.store, dropping.store:
            yield complete, dropping


async def dropped_run(receiver: Receiver, rocketchat: FakeRocketChat) -> SimulationReport:
    report = await play(SIMULATION.chats(CHATS), receiver.webhook, token=TOKEN, concurrency=16,
                        rocketchat=rocketchat, policy=RetryPolicy.no_retry(),
                        drops=Drops(share=0.1, seed=5, down=DOWN))  # fmt: skip
    await receiver.handle()
    return report


def identities(payloads: list[dict[str, Any]]) -> set[str]:
    found = {event_identity(parse_event(payload)) for payload in payloads}
    return {identity for identity in found if identity is not None}


def pairs(rebuilt: list[str], sent: Iterable[str]) -> dict[str, str]:
    """Each sent identity with the rebuilt one that names the same event (a take before the
    latest is rebuilt from the system message written milliseconds after it); fails on one left
    over on either side."""
    left, paired = list(rebuilt), {}
    for identity in sent:
        match = next((other for other in left if identities_match(identity, other)), None)
        assert match is not None, f"not rebuilt: {identity}"
        left.remove(match)
        paired[identity] = match
    assert not left, f"rebuilt but never sent: {left}"
    return paired


def rooms_of(report: SimulationReport, types: set[str] | None = None) -> set[str]:
    return {d.room_id for d in report.dropped
            if d.room_id and (types is None or d.type in types)}  # fmt: skip


async def reconcile(rocketchat: FakeRocketChat, store: Store, apply: bool) -> ReconcileReport:
    api = RocketChatApi(rocketchat.url, rocketchat.user_id, rocketchat.auth_token)
    try:
        switches = await read_switches(api, configured=None)
        reconciler = Reconciler(
            api, store, switches, settings=await read_build_settings(api, switches)
        )
        report = await reconciler.find(SINCE, UNTIL)
        return await reconciler.apply(report) if apply else report
    finally:
        await api.aclose()


async def test_reconcile_rebuilds_exactly_what_was_dropped_and_the_crm_ends_complete(
    receivers: tuple[Receiver, Receiver], httpserver: HTTPServer
) -> None:
    complete, dropping = receivers
    await play(SIMULATION.chats(CHATS), complete.webhook, token=TOKEN, concurrency=16,
               policy=RetryPolicy.no_retry())  # fmt: skip
    await complete.handle()
    rocketchat = FakeRocketChat(httpserver)
    rocketchat.apply(SIMULATION.settings)
    played = await dropped_run(dropping, rocketchat)
    assert {d.reason for d in played.dropped} == {"share", "down"}
    assert played.ok == played.events  # every webhook not dropped was answered 200

    # Without --apply: exactly the dropped events that leave a trace are found, nothing changes.
    found = await reconcile(rocketchat, dropping.store, apply=False)
    dropped = [d.payload for d in played.dropped if d.type in REBUILT]
    queued_now = {room["_id"] for room in rocketchat.rooms.values()
                  if room.get("open") and not room.get("servedBy")}  # fmt: skip
    dropped += [d.payload for d in played.dropped
                if d.type == "LivechatSessionQueued" and d.room_id in queued_now]  # fmt: skip
    pairs([gap.event.identity for gap in found.rebuildable if gap.event], identities(dropped))
    assert len(found.rebuildable) == len(identities(dropped)) > 100
    before = dropping.crm()
    assert before != complete.crm()

    # --apply: each rebuilt once, handled as a delivery; the CRM ends as if nothing was dropped,
    # but for what Rocket.Chat keeps no trace of.
    applied = await reconcile(rocketchat, dropping.store, apply=True)
    assert len(applied.applied) == len(found.rebuildable)
    assert applied.already == 0
    await dropping.handle()
    counts = await dropping.store.events.counts()
    assert counts["dead"] == counts["failed"] == counts["pending"] == 0
    rebuilt = await dropping.store.events.find(source="reconcile", limit=10_000)
    assert len(rebuilt) == len(found.rebuildable)

    ended, expected = dropping.crm(), complete.crm()
    traceless = rooms_of(played, {"LeadCapture", "LivechatEdit"})  # left as Rocket.Chat left them
    offline = [d for d in played.dropped if d.type == "LivechatOfflineMessage"]  # no room at all

    def chats(rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        return {row for row in rows if not str(row[0]).startswith("offline:")}

    assert chats(ended["messages"]) == chats(expected["messages"])
    assert len(expected["messages"]) - len(ended["messages"]) == len(offline)
    differing = {row[0] for row in chats(ended["conversations"]) ^ chats(expected["conversations"])}
    assert differing <= traceless
    assert len(expected["conversations"]) - len(ended["conversations"]) == len(offline)
    contacts_differing = {row[0] for row in set(ended["contacts"]) ^ set(expected["contacts"])}
    assert len(contacts_differing) <= len(offline) + len(traceless)

    # A real delivery arriving late, after its rebuild: answered as a duplicate, handled never.
    late = next(d.payload for d in played.dropped if d.type == "LivechatSession")
    async with httpx.AsyncClient() as client:
        answer = await client.post(dropping.webhook, content=json.dumps(late),
                                   headers={TOKEN_HEADER: TOKEN})  # fmt: skip
    assert answer.status_code == 200
    assert await dropping.worker.drain() == 0
    assert (await dropping.store.events.counts()) == counts

    # Run again: nothing left to rebuild, nothing changes.
    again = await reconcile(rocketchat, dropping.store, apply=True)
    assert again.rebuildable == []
    assert again.applied == ()
    assert dropping.crm() == ended


def test_rebuilt_events_are_the_events_rocket_chat_sent() -> None:
    # The same events, and the same payloads but for what Rocket.Chat keeps only as it is now
    # (tags, the visitor, crmData, a message's _updatedAt) or a few ms apart (servedBy.ts of a
    # take before the last). A version edited away again is reported, not rebuilt.
    compared = 0
    for chat in SIMULATION.chats(120):
        if chat.builder is None:
            continue
        sent = {event_identity(parse_event(p)): p for p in chat.payloads()}
        found, lost = expected_events(chat.builder.records(), ALL_ON, settings=SIMULATION.settings)
        edited_away = [item.identity for item in lost]
        assert all(item.type == "Message" and any(
            identities_match(item.identity or "", i, item.within) for i in sent) for item in lost)  # fmt: skip
        rebuildable = [i for i, p in sent.items() if p["type"] in REBUILT and i
                       and not any(identities_match(i, e or "", 1.0) for e in edited_away)]  # fmt: skip
        matched = pairs([e.identity for e in found], rebuildable)
        by_identity = {e.identity: e for e in found}
        for identity, rebuilt_identity in matched.items():
            event = by_identity[rebuilt_identity]
            rebuilt, real = json.loads(event.body), sent[identity]
            for payload in (rebuilt, real):
                for key in ("tags", "visitor", "crmData"):
                    payload.pop(key, None)
                for key in ("servedBy", "oldServedBy"):
                    if isinstance(payload.get(key), dict):
                        payload[key].pop("ts", None)
                for message in payload.get("messages", []):
                    message.pop("_updatedAt", None)
            assert rebuilt == real, event.what
            compared += 1
    assert compared > 1000
