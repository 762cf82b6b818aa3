"""Alerts: each condition fires once, again at most once per period while it lasts, and resolves
once; to a plain webhook, a Slack-compatible one and a Rocket.Chat room; one process alerts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import parse_event, samples
from omnihook.contracts.cli import root
from omnihook.receiver.bridge import build_alert_routes, load_bridge_config
from omnihook.receiver.delivery import stored_delivery
from omnihook.receiver.ops.alerts import (
    AlertLoop,
    AlertRules,
    RocketChatTarget,
    SlackTarget,
    WebhookTarget,
)
from omnihook.receiver.rest import RocketChatApi
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.store import Finish, Store

from ..conftest import free_port
from ..processes import OmnihookProcess, wait_for


class Inbox:
    """A webhook endpoint that keeps what it is sent (and can fail)."""

    def __init__(self, httpserver: HTTPServer, path: str) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = False
        httpserver.expect_request(path, method="POST").respond_with_handler(self.take)
        self.url = httpserver.url_for(path)

    def take(self, request: Request) -> Response:
        if self.failing:
            return Response("down", status=502)
        self.received.append(json.loads(request.get_data()))
        return Response("ok")


@pytest.fixture
async def store(tmp_path: Any) -> AsyncIterator[Store]:
    async with Store.open(f"sqlite:///{tmp_path / 'omnihook.db'}") as store:
        yield store


async def dead_letter(store: Store, name: str = "chat-close") -> int:
    body = json.dumps(samples.sample(name)).encode()
    accepted = await store.events.accept(stored_delivery(parse_event(body), body))
    [claimed] = await store.events.claim("w", 1, 30, time.time())
    now = time.time()
    await store.events.finish(claimed, "w", Finish("dead", now, now, error="CRM said no"))
    return accepted.event_id


async def test_a_condition_fires_once_per_period_and_resolves_once(
    store: Store, httpserver: HTTPServer
) -> None:
    hook, slack = Inbox(httpserver, "/hook"), Inbox(httpserver, "/slack")
    now = [time.time()]
    loop = AlertLoop(store, [WebhookTarget(hook.url), SlackTarget(slack.url)],
                     AlertRules(on=frozenset({"dead_letters"}), every=3600), clock=lambda: now[0])  # fmt: skip
    assert await loop.once() == []  # all well: nothing sent
    event_id = await dead_letter(store)

    alerts = await loop.once()  # one per target
    assert [(a.key, a.state) for a in alerts] == [("dead_letters", "firing")] * 2
    assert hook.received[0]["alert"] == "dead_letters"
    assert hook.received[0]["state"] == "firing"
    assert hook.received[0]["details"] == {"dead": 1}
    assert slack.received == [{"text": "[omnihook ALERT] 1 dead event(s): `omnihook events "
                                       "list --status dead`, then `omnihook events replay`"}]  # fmt: skip

    now[0] += 60
    assert await loop.once() == []  # still firing: debounced
    now[0] += 3600
    assert [a.state for a in await loop.once()] == ["firing"] * 2  # a reminder, once per period

    await store.events.replay([event_id], now=now[0])  # an operator fixed it
    now[0] += 60
    assert [a.state for a in await loop.once()] == ["resolved"] * 2
    assert slack.received[-1]["text"].startswith("[omnihook RESOLVED] resolved: 1 dead event(s)")
    assert await loop.once() == []
    assert len(hook.received) == 3


async def test_crm_failing_handling_delay_and_reconcile_gaps(
    store: Store, httpserver: HTTPServer
) -> None:
    hook = Inbox(httpserver, "/hook")
    now = [time.time()]
    rules = AlertRules(crm_failing_after=600, handling_delay=300)
    loop = AlertLoop(store, [WebhookTarget(hook.url)], rules, clock=lambda: now[0])
    await store.state.put("circuit:hubspot", {"state": "open", "reason": "HTTP 503",
                                              "opened_at": now[0] - 120}, now[0])  # fmt: skip
    body = json.dumps(samples.sample("chat-start")).encode()
    await store.events.accept(stored_delivery(parse_event(body), body))
    await store.state.put("reconcile", {"outcome": "ok", "gaps": 4, "rebuilt": 4}, now[0])
    assert [a.key for a in await loop.once()] == ["reconcile_gaps"]  # the others not yet
    now[0] += 500
    fired = {a.key: a for a in await loop.once()}
    assert set(fired) == {"crm_failing:hubspot", "handling_delay"}
    assert "CRM adapter hubspot has been failing for 10 min" in fired["crm_failing:hubspot"].summary
    await store.state.put("circuit:hubspot", {"state": "closed", "opened_at": None}, now[0])
    await store.state.put("reconcile", {"outcome": "ok", "gaps": 0, "rebuilt": 0}, now[0])
    resolved = {a.key for a in await loop.once() if a.state == "resolved"}
    assert resolved == {"crm_failing:hubspot", "reconcile_gaps"}


async def test_a_rocket_chat_room_and_a_target_that_is_down(
    store: Store, httpserver: HTTPServer
) -> None:
    rocketchat = FakeRocketChat(httpserver)
    rocketchat.rooms["GENERAL"] = {"_id": "GENERAL", "t": "c", "name": "general"}
    down = Inbox(httpserver, "/down")
    down.failing = True
    api = RocketChatApi(rocketchat.url, rocketchat.user_id, rocketchat.auth_token)
    try:
        loop = AlertLoop(store, [WebhookTarget(down.url), RocketChatTarget(api, "GENERAL")])
        await dead_letter(store)
        _, alert = await loop.once()  # the webhook is down: the room still gets it
    finally:
        await api.aclose()
    [posted] = rocketchat.sent
    assert posted["rid"] == "GENERAL"
    assert posted["msg"] == alert.text()


async def test_one_process_alerts_at_a_time(store: Store, httpserver: HTTPServer) -> None:
    hook = Inbox(httpserver, "/hook")
    first, second = (AlertLoop(store, [WebhookTarget(hook.url)]) for _ in range(2))
    await dead_letter(store)
    assert len(await first.once()) == 1
    assert await second.once() == []
    assert len(hook.received) == 1


def test_rules_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="unknown alert condition"):
        AlertRules(on=frozenset({"dead_letter"}))
    with pytest.raises(ValueError, match="every must be positive"):
        AlertRules(every=0)


def test_alerts_test_sends_a_sample_to_each_target(httpserver: HTTPServer, tmp_path: Any) -> None:
    hook, slack, down = (Inbox(httpserver, p) for p in ("/hook", "/slack", "/down"))
    down.failing = True
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[[alerts]]\nkind = "webhook"\nurl_env = "HOOK_URL"\non = ["dead_letters"]\n'
        '[[alerts]]\nkind = "slack"\nurl_env = "SLACK_URL"\nevery = "30m"\n'
        '[[alerts]]\nkind = "webhook"\nurl_env = "DOWN_URL"\n'
    )
    env = {"HOOK_URL": hook.url, "SLACK_URL": slack.url, "DOWN_URL": down.url}
    result = CliRunner().invoke(root, ["alerts", "test", "--config", str(config)], env=env)
    assert result.exit_code == 1
    assert "alerts[0] (webhook): sent" in result.stdout
    assert "alerts[1] (slack): sent" in result.stdout
    assert "alerts[2] (webhook): failed: webhook answered 502" in result.stderr
    assert hook.received[0]["alert"] == "test"
    assert slack.received[0]["text"].startswith("[omnihook ALERT] a test of omnihook's alerts")
    routes = build_alert_routes(load_bridge_config(config), None, env)
    assert [rules.every for _, rules in routes] == [3600, 1800, 3600]
    assert routes[0][1].on == frozenset({"dead_letters"})


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            'kind = "webhook"\nurl_env = "NOT_SET"',
            "alerts[0].url_env: environment variable NOT_SET",
        ),
        ('kind = "slack"', "alerts[0].url_env: a slack alert needs"),
        ('kind = "rocketchat"\nroom_id = "GENERAL"', "alerts[0]: a rocketchat alert needs room_id"),
        (
            'kind = "webhook"\nurl_env = "HOOK_URL"\non = ["dead"]',
            "unknown alert condition(s) dead",
        ),
        ('kind = "email"', "kind"),
    ],
)
def test_alert_blocks_that_cannot_work_are_named(block: str, message: str, tmp_path: Any) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f"[[alerts]]\n{block}\n")
    result = CliRunner().invoke(root, ["alerts", "test", "--config", str(config)],
                                env={"HOOK_URL": "http://127.0.0.1:9/x", "NOT_SET": ""})  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output


def test_serve_alerts_from_its_bridge_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    """``omnihook serve --config`` with [[alerts]]: its first check, at start, finds the dead
    letter already in the store and sends it."""
    hook = Inbox(httpserver, "/hook")
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"

    async def prefill() -> None:
        async with Store.open(store_url) as store:
            await dead_letter(store)

    asyncio.run(prefill())
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[receiver]\nstore = "{store_url}"\n[[alerts]]\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
    )
    port = free_port()
    serve = OmnihookProcess(["serve", "--config", str(config), "--port", str(port)], tmp_path,
                            {"OMNIHOOK_TOKEN": "t", "HOOK_URL": hook.url}, port=port).start()  # fmt: skip
    try:
        wait_for(lambda: hook.received, 20, "the alert")
    finally:
        serve.stop()
    assert hook.received[0]["alert"] == "dead_letters"
    assert "alerts: webhook" in serve.output()
    assert hook.url not in serve.output()  # a webhook URL is a secret
