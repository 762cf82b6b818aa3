"""Reconcile where Rocket.Chat is not cooperative: a permission missing, the rate limiter, an
outage, a room deleted in between, settings the bot may not read; the command as users run it;
the continuous mode, one process at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from omnihook.contracts import parse_event
from omnihook.contracts.cli import root
from omnihook.receiver.delivery import stored_delivery
from omnihook.receiver.reconcile import (
    ReconcileLoop,
    Reconciler,
    WebhookSwitches,
    read_switches,
)
from omnihook.receiver.rest import RocketChatApi, RocketChatRefused, RocketChatUnavailable
from omnihook.sender import fake_rocketchat
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.sender.simulate import Simulation
from omnihook.store import Store

SIMULATION = Simulation(seed=4)
CHATS = 12
SINCE = (SIMULATION.start - timedelta(hours=1)).timestamp()
UNTIL = (SIMULATION.start + timedelta(days=1)).timestamp()


class Clock:
    """The API's and the fake's time: waiting moves it on, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rocketchat(httpserver: HTTPServer, clock: Clock) -> FakeRocketChat:
    """A Rocket.Chat holding the simulation's chats as they ended (no webhook was delivered)."""
    fake = FakeRocketChat(httpserver, clock=clock)
    fake.apply(SIMULATION.settings)
    for chat in SIMULATION.chats(CHATS):
        chat.payloads()
        if chat.builder is not None:
            fake.add_records(chat.builder.records())
    return fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store.open(f"sqlite:///{tmp_path / 'omnihook.db'}") as store:
        yield store


def api_for(rocketchat: FakeRocketChat, clock: Clock) -> RocketChatApi:
    return RocketChatApi(rocketchat.url, rocketchat.user_id, rocketchat.auth_token,
                         sleep=clock.sleep, clock=clock, delay=0.01)  # fmt: skip


async def find(rocketchat: FakeRocketChat, store: Store, clock: Clock) -> Any:
    api = api_for(rocketchat, clock)
    try:
        switches = await read_switches(api, None)
        return await Reconciler(api, store, switches).find(SINCE, UNTIL)
    finally:
        await api.aclose()


async def test_a_missing_permission_is_an_error_naming_it(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    rocketchat.revoke(rocketchat.user_id, "view-livechat-rooms")
    with pytest.raises(RocketChatRefused, match="view-livechat-rooms"):
        await find(rocketchat, store, clock)
    assert await store.events.find() == []


async def test_the_rate_limiter_is_waited_out(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    rocketchat.limit_rate(calls=3, interval_ms=60_000)
    started = clock.now
    report = await find(rocketchat, store, clock)
    assert report.rooms == len({c.room_id for c in SIMULATION.chats(CHATS) if c.room_id})
    assert len(report.rebuildable) > 50
    assert clock.now - started >= 60  # it waited for the window to reset, on the fake's clock


async def test_rocket_chat_unreachable_is_reported_not_guessed_around(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    rocketchat.fail(503, times=100)
    with pytest.raises(RocketChatUnavailable, match="503"):
        await find(rocketchat, store, clock)


async def test_a_room_deleted_in_between_is_left_out_saying_why(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    victim = next(c.room_id for c in SIMULATION.chats(CHATS) if c.room_id)
    api = api_for(rocketchat, clock)
    listed = api.livechat_rooms

    async def list_then_delete(**filters: Any) -> list[dict[str, Any]]:
        rooms = await listed(**filters)
        rocketchat.delete_room(victim)  # an admin deletes it while reconcile works
        return rooms

    api.livechat_rooms = list_then_delete  # type: ignore[method-assign]
    try:
        switches = await read_switches(api, None)
        report = await Reconciler(api, store, switches).find(SINCE, UNTIL)
    finally:
        await api.aclose()
    assert [room for room, _ in report.skipped_rooms] == [victim]
    assert all(gap.room_id != victim for gap in report.gaps)


async def test_settings_the_bot_may_not_read_come_from_configuration(
    rocketchat: FakeRocketChat, clock: Clock
) -> None:
    rocketchat.revoke(rocketchat.user_id, "view-privileged-setting")
    api = api_for(rocketchat, clock)
    try:
        with pytest.raises(RocketChatRefused, match=r"view-privileged-setting.*webhook_events"):
            await read_switches(api, None)
        configured = WebhookSwitches.from_names(["Chat Close", "Visitor Messages"])
        assert await read_switches(api, configured) is configured
    finally:
        await api.aclose()
    assert configured.sends("Chat Close")
    assert not configured.sends("Agent Messages")
    with pytest.raises(ValueError, match="unknown event type"):
        WebhookSwitches.from_names(["Chat Teleported"])


def test_the_command_lists_the_gaps_then_applies_them(
    rocketchat: FakeRocketChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    asyncio.run(Store(store_url).connect())
    monkeypatch.setenv("OMNIHOOK_ROCKETCHAT_URL", rocketchat.url)
    monkeypatch.setenv("OMNIHOOK_ROCKETCHAT_USER_ID", rocketchat.user_id)
    monkeypatch.setenv("OMNIHOOK_ROCKETCHAT_AUTH_TOKEN", rocketchat.auth_token)
    since = (SIMULATION.start - timedelta(hours=1)).isoformat()
    until = (SIMULATION.start + timedelta(days=1)).isoformat()
    runner = CliRunner()
    args = ["reconcile", "--since", since, "--until", until, "--store", store_url]
    listed = runner.invoke(root, [*args, "--json"])
    assert listed.exit_code == 0, listed.output
    gaps = [json.loads(line) for line in listed.output.splitlines()]
    assert len(gaps) > 50
    assert all(gap["rebuildable"] and not gap["applied"] for gap in gaps)
    table = runner.invoke(root, args, env={"COLUMNS": "200"})
    assert "run again with --apply to rebuild" in table.output
    assert "Chat Close" in table.output
    applied = runner.invoke(root, [*args, "--apply"], env={"COLUMNS": "200"})
    assert applied.exit_code == 0, applied.output
    assert f"rebuilt {len(gaps)} event(s)" in applied.output
    again = runner.invoke(root, [*args, "--json"])
    assert again.output == ""  # nothing left
    rebuilt = runner.invoke(root, ["events", "list", "--source", "reconcile", "--json",
                                   "--limit", "1000", "--store", store_url])  # fmt: skip
    assert len(rebuilt.output.splitlines()) == len(gaps)


def test_the_command_exits_1_when_a_room_was_left_out(
    rocketchat: FakeRocketChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    asyncio.run(Store(store_url).connect())
    for name, value in (("URL", rocketchat.url), ("USER_ID", rocketchat.user_id),
                        ("AUTH_TOKEN", rocketchat.auth_token)):  # fmt: skip
        monkeypatch.setenv(f"OMNIHOOK_ROCKETCHAT_{name}", value)
    victim = next(c.room_id for c in SIMULATION.chats(CHATS) if c.room_id)
    created, rocketchat.rooms[victim]["ts"] = rocketchat.rooms[victim]["ts"], "the second Tuesday"
    since = (SIMULATION.start - timedelta(hours=1)).isoformat()
    until = (SIMULATION.start + timedelta(days=1)).isoformat()
    args = ["reconcile", "--since", since, "--until", until, "--store", store_url]
    listed = CliRunner().invoke(root, [*args, "--json"])
    assert listed.exit_code == 1
    assert f"room {victim} left out: its records could not be rebuilt" in listed.stderr
    assert len(listed.stdout.splitlines()) > 50  # the other rooms' gaps, as JSON
    table = CliRunner().invoke(root, args, env={"COLUMNS": "200"})
    assert table.exit_code == 1
    assert f"room {victim} left out" in table.output
    rocketchat.rooms[victim]["ts"] = created  # repaired: the next run is complete
    assert CliRunner().invoke(root, [*args, "--json"]).exit_code == 0


def test_the_command_without_rocket_chat_says_what_to_set(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    asyncio.run(Store(store_url).connect())
    result = CliRunner().invoke(root, ["reconcile", "--store", store_url], env={
        "OMNIHOOK_ROCKETCHAT_URL": "", "OMNIHOOK_CONFIG": ""})  # fmt: skip
    assert result.exit_code == 2
    assert "OMNIHOOK_ROCKETCHAT_URL" in result.output
    bad = CliRunner().invoke(root, ["reconcile", "--since", "yesterday", "--store", store_url])
    assert bad.exit_code == 2
    assert "neither a duration ago" in bad.output


async def test_one_process_reconciles_at_a_time(
    rocketchat: FakeRocketChat, store: Store, clock: Clock, tmp_path: Path
) -> None:
    window = UNTIL - SINCE
    lag = clock.now - UNTIL  # the window ends where the simulation's day ends
    loops = [
        ReconcileLoop(
            api_for(rocketchat, clock),
            store,
            every=600,
            window=window,
            lag=lag,
            owner=name,
            clock=clock,
            not_before=SINCE,
        )
        for name in ("serve-a", "worker-b")
    ]
    first = await loops[0].once()
    second = await loops[1].once()
    assert first is not None
    assert len(first.applied) > 50
    assert second is None  # serve-a holds the lock
    clock.now += 1201  # serve-a stopped renewing: its lock expired (after 2 rounds or 300 s)
    taken_over = await loops[1].once()
    assert taken_over is not None
    assert taken_over.applied == ()  # nothing left to rebuild
    for loop in loops:
        await loop.api.aclose()


async def test_a_rocket_chat_without_the_queued_filter_is_reconciled_saying_so(
    rocketchat: FakeRocketChat, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before 7.0, livechat/rooms validates its parameters and knows no `queued`: 400.
    monkeypatch.setattr(fake_rocketchat, "_ROOM_PARAMS", fake_rocketchat._ROOM_PARAMS - {"queued"})
    report = await find(rocketchat, store, clock)
    assert report.rooms == len({c.room_id for c in SIMULATION.chats(CHATS) if c.room_id})
    assert len(report.rebuildable) > 50
    assert report.notes == (
        "this Rocket.Chat cannot list the rooms waiting in the queue (no queued filter before "
        "7.0): a room created before the window and still queued is not looked at",
    )


async def test_a_room_rocket_chat_fails_to_read_is_left_out_the_others_reconciled(
    rocketchat: FakeRocketChat, store: Store, clock: Clock, httpserver: HTTPServer
) -> None:
    victim = next(c.room_id for c in SIMULATION.chats(CHATS) if c.room_id)
    for _ in range(3):  # every attempt at its messages fails (a record Rocket.Chat chokes on)
        httpserver.expect_oneshot_request(f"/api/v1/livechat/{victim}/messages").respond_with_json(
            {"success": False, "error": "Internal server error"}, status=500
        )
    report = await find(rocketchat, store, clock)
    [(room, why)] = report.skipped_rooms
    assert room == victim
    assert why.startswith("Rocket.Chat failed reading it: Rocket.Chat answered 500")
    assert all(gap.room_id != victim for gap in report.gaps)
    assert report.rooms == len({c.room_id for c in SIMULATION.chats(CHATS) if c.room_id})
    assert len(report.rebuildable) > 50


async def test_a_record_that_cannot_be_read_skips_its_room_not_the_round(
    rocketchat: FakeRocketChat, store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    victim = next(c.room_id for c in SIMULATION.chats(CHATS) if c.room_id)
    rocketchat.rooms[victim]["ts"] = "the second Tuesday"  # a record no version would write
    report = await find(rocketchat, store, clock)
    assert [room for room, _ in report.skipped_rooms] == [victim]
    assert "its records could not be rebuilt (ValueError" in report.skipped_rooms[0][1]
    assert f"room {victim} could not be rebuilt" in caplog.text
    assert "Traceback" in caplog.text  # the operator (or a bug report) gets where it failed
    assert len(report.rebuildable) > 50


def loop_for(
    rocketchat: FakeRocketChat, store: Store, clock: Clock, **options: Any
) -> ReconcileLoop:
    options.setdefault("not_before", SINCE)
    return ReconcileLoop(api_for(rocketchat, clock), store, every=600, window=UNTIL - SINCE,
                         lag=clock.now - UNTIL, clock=clock, **options)  # fmt: skip


async def test_a_failing_round_is_logged_and_the_next_one_runs(
    rocketchat: FakeRocketChat,
    store: Store,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = loop_for(rocketchat, store, clock)
    real_find = Reconciler.find
    calls = 0

    async def find_with_a_bug(self: Reconciler, since: float, until: float) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("a bug in this round")
        return await real_find(self, since, until)

    monkeypatch.setattr(Reconciler, "find", find_with_a_bug)
    assert await loop.once() is None
    assert "reconcile failed this round; the next one tries again" in caplog.text
    assert "KeyError: 'a bug in this round'" in caplog.text
    failed = await store.state.get("reconcile")  # what `omnihook status` shows
    assert failed is not None
    assert failed.value["outcome"] == "failed"
    report = await loop.once()
    assert report is not None
    assert len(report.applied) > 50
    recorded = await store.state.get("reconcile")
    assert recorded is not None
    assert (recorded.value["outcome"], recorded.value["rebuilt"]) == ("ok", len(report.applied))
    assert recorded.value["by"] == loop.owner
    await loop.api.aclose()


async def test_stopping_ends_a_round_in_progress_and_frees_the_lock(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    loop = loop_for(rocketchat, store, clock, owner="serve-a")
    reading = asyncio.Event()
    never = asyncio.Event()

    async def a_very_slow_rocket_chat(**filters: Any) -> list[dict[str, Any]]:
        reading.set()
        await never.wait()
        return []

    loop.api.livechat_rooms = a_very_slow_rocket_chat  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    await asyncio.wait_for(reading.wait(), 10)
    stop.set()
    await asyncio.wait_for(running, 10)  # does not wait for the round to end
    other = loop_for(rocketchat, store, clock, owner="worker-b")
    assert await other.once() is not None  # the lock was released, not left to expire
    await loop.api.aclose()
    await other.api.aclose()


async def test_a_long_round_keeps_its_lock(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    renewed = asyncio.Event()

    async def lease_time_passes(seconds: float) -> None:
        clock.now += seconds  # each renewal is due a third of a lease later
        renewed.set()
        await asyncio.sleep(0)

    loop = loop_for(rocketchat, store, clock, owner="serve-a", sleep=lease_time_passes)
    release = asyncio.Event()
    listed = loop.api.livechat_rooms

    async def slow_listing(**filters: Any) -> list[dict[str, Any]]:
        await release.wait()
        return await listed(**filters)

    loop.api.livechat_rooms = slow_listing  # type: ignore[method-assign]
    started = clock.now
    round_ = asyncio.create_task(loop.once())
    for _ in range(6):  # two whole leases pass while the round reads
        renewed.clear()
        await asyncio.wait_for(renewed.wait(), 10)
    assert clock.now - started >= 2 * loop.lease
    other = loop_for(rocketchat, store, clock, owner="worker-b")
    assert await other.once() is None  # still held: renewed while serve-a works
    release.set()
    assert await asyncio.wait_for(round_, 30) is not None
    await loop.api.aclose()
    await other.api.aclose()


async def test_an_original_that_cannot_be_rebuilt_is_no_gap_once_received(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    # Message_KeepHistory off: an edited message's first version leaves no trace.
    edited = next(m for m in rocketchat.messages.values()
                  if m.get("editedAt") and not m.get("_hidden"))  # fmt: skip
    for message_id in [i for i, m in rocketchat.messages.items() if m.get("_hidden")]:
        del rocketchat.messages[message_id]
    what = f"message {edited['_id']}"
    report = await find(rocketchat, store, clock)
    [lost] = [gap for gap in report.gaps if gap.event is None and gap.what.endswith(what)]
    assert "Message_KeepHistory off" in (lost.why or "")
    # Its webhook did arrive back then: then nothing is missing.
    chat = next(c for c in SIMULATION.chats(CHATS) if c.room_id == edited["rid"])
    original = next(p for p in chat.payloads() if p.get("type") == "Message"
                    and any(m.get("_id") == edited["_id"] and not m.get("editedAt")
                            for m in p.get("messages", [])))  # fmt: skip
    body = json.dumps(original).encode()
    await store.events.accept(stored_delivery(parse_event(body), body, source="webhook"))
    report = await find(rocketchat, store, clock)
    assert [gap for gap in report.gaps if gap.what.endswith(what) and gap.event is None] == []


async def test_by_default_nothing_before_the_first_webhook_is_rebuilt(
    rocketchat: FakeRocketChat, store: Store, clock: Clock
) -> None:
    loop = loop_for(rocketchat, store, clock, not_before=None)
    assert await loop.once() is None  # no webhook yet: the past is not replayed into a CRM
    assert rocketchat.requests("GET") == []
    # The receiver goes live half way through the day: its first webhook arrives then.
    firsts = sorted((c.payloads()[0] for c in SIMULATION.chats(CHATS) if c.room_id),
                    key=lambda payload: str(payload["createdAt"]))  # fmt: skip
    first = firsts[len(firsts) // 2]
    body = json.dumps(first).encode()
    live_since = datetime.fromisoformat(first["createdAt"].replace("Z", "+00:00")).timestamp()
    await store.events.accept(
        stored_delivery(parse_event(body), body, source="webhook", received_at=live_since)
    )
    report = await loop.once()
    assert report is not None
    assert report.since == live_since
    assert report.applied
    assert all(gap.at >= first["createdAt"] for gap in report.applied)
    await loop.api.aclose()
