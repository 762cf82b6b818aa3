"""The contract-testing kit as users meet it: test files run by pytest, passing and failing."""

from __future__ import annotations

import pytest

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

RECEIVER = """
import pytest
from omnihook.contracts import EventType
from omnihook.receiver import Router, create_app

router = Router()
seen = []

@router.on_any
async def record(event):
    seen.append(event.type)

@router.on(EventType.CHAT_CLOSE)
async def close(event):
    if event.visitor.first_email == "broken@example.com":
        raise RuntimeError("CRM said no")
    return {"ticket": "T-1"}

@pytest.fixture
def rocketchat_target():
    return create_app(router, tokens=["s3cret"])

@pytest.fixture
def rocketchat_token():
    return "s3cret"
"""


def test_a_receiver_that_behaves_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        RECEIVER
        + """
async def test_a_chat(rocketchat):
    chat = rocketchat.chat()
    await chat.start()
    await chat.take()
    await chat.visitor_says("hi")
    await chat.agent_says("hello")
    close = await chat.close()
    chat.assert_all_ok()
    assert close.json()["ticket"] == "T-1"
    edit = await chat.edit_after_close(tags=["vip"])
    assert edit.json()["ticket"] == "T-1"          # crmData came back from the close's answer
    assert seen == ["LivechatSessionStart", "LivechatSessionTaken", "Message", "Message",
                    "LivechatSession", "LivechatEdit"]
    assert (await rocketchat.send_test()).json() == {"ok": True}
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_failing_receiver_fails_readably(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        RECEIVER
        + """
async def test_a_chat(rocketchat):
    chat = rocketchat.chat(email="broken@example.com")
    await chat.start()
    await chat.visitor_says("hi")
    await chat.close(by="visitor")
    chat.assert_all_ok()

async def test_a_wrong_token(rocketchat):
    rocketchat.token = "guess"
    (await rocketchat.chat().start()).assert_ok()
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*AssertionError: 1 of 3 deliveries not answered 200:",
        "*LivechatSession: 500 {\"error\":\"handler_failed\"*",
        "*AssertionError: LivechatSessionStart was answered 401, not 200: {\"error\":\"invalid_token\"*",
    ])  # fmt: skip


def test_a_durable_receiver_runs_its_lifespan_and_worker(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
import pytest
from omnihook.receiver import Router, create_app

router = Router()
seen = []
router.on_any(lambda event: seen.append(event.type))

@pytest.fixture
def rocketchat_target(tmp_path):
    return create_app(router, tokens=["s3cret"], store=f"sqlite:///{tmp_path / 'db.sqlite'}")

async def test_handled_after_settling(rocketchat):
    rocketchat.token = "s3cret"
    chat = rocketchat.chat()
    await chat.start()
    await chat.close()
    await rocketchat.settle()
    assert seen == ["LivechatSessionStart", "LivechatSession"]
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


SENDER = """
import json, httpx
from omnihook.contracts import samples
from omnihook.sender import Sender

async def test_my_sender(webhook_sink):
    webhook_sink.token = "s3cret"
    async with Sender(webhook_sink.url, token="s3cret") as sender:
        assert (await sender.send(samples.sample("chat-close"))).ok
        assert (await sender.send(samples.sample("offline-message"))).ok
    webhook_sink.assert_valid()
    assert [e.type for e in webhook_sink.events()] == ["LivechatSession", "LivechatOfflineMessage"]

async def test_retries_against_a_failing_sink(webhook_sink):
    webhook_sink.respond(503, "busy", times=1)
    from omnihook.sender import FakeClock
    async with Sender(webhook_sink.url, clock=FakeClock()) as sender:
        delivery = await sender.send(samples.sample("chat-start"))
    assert delivery.attempts == 2
    assert len(webhook_sink.deliveries) == 2
"""

BAD_SENDER = """
import json, httpx
from omnihook.contracts import samples

async def test_hand_made_sender(webhook_sink):
    webhook_sink.token = "s3cret"
    document = samples.sample("chat-close")
    document["messages"][1]["ts"] = "2025-03-14 09:31:10"
    del document["visitor"]["username"]
    async with httpx.AsyncClient() as client:
        await client.post(webhook_sink.url, content=json.dumps(document), headers={"Content-Type": "text/plain"})
    webhook_sink.assert_valid()
"""


def test_a_sender_that_behaves_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(SENDER)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_a_sender_that_drifts_fails_readably(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(BAD_SENDER)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    for line in (
        "AssertionError: 4 problem(s) in 1 deliveries:",
        "delivery 1 (LivechatSession): Content-Type: expected application/json, got 'text/plain'",
        "delivery 1 (LivechatSession): X-RocketChat-Livechat-Token: missing",
        "delivery 1 (LivechatSession): visitor.username: required field is missing",
        "delivery 1 (LivechatSession): messages[1].ts: not a Rocket.Chat date",
    ):
        assert line in output, line


def test_no_target_says_how_to_give_one(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("async def test_x(rocketchat):\n    await rocketchat.chat().start()\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*no receiver to talk to: define a `rocketchat_target` fixture*"])
