"""Reconcile where Rocket.Chat is not cooperative: a permission missing, the rate limiter, an
outage, a room deleted in between, settings the bot may not read; the command as users run it;
the continuous mode, one process at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from omnihook.contracts.cli import root
from omnihook.receiver.reconcile import (
    ReconcileLoop,
    Reconciler,
    WebhookSwitches,
    read_switches,
)
from omnihook.receiver.rest import RocketChatApi, RocketChatRefused, RocketChatUnavailable
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
