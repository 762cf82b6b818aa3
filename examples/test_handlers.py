"""Testing a receiver with the kit's `rocketchat` fixture: here examples/handlers.py, run by
`uv run pytest` like any test (with omnihook-sender[testing] and asyncio_mode = "auto")."""

import pytest
from handlers import conversations, router  # your receiver's Router

from omnihook.receiver import create_app


@pytest.fixture
def rocketchat_target():
    return create_app(router, tokens=["s3cret"])  # or the URL of a running receiver


@pytest.fixture
def rocketchat_token():
    return "s3cret"


async def test_a_whole_chat(rocketchat):
    chat = rocketchat.chat(visitor_name="Jane Doe", email="jane.doe@example.com")
    await chat.start()
    await chat.take(agent="emma.brown")
    await chat.visitor_says("Hi, my order has not arrived.")
    await chat.agent_says("Let me check that for you.")
    closed = await chat.close(by="visitor")
    chat.assert_all_ok()  # else: which deliveries were not answered 200, with their bodies
    # crmData: the start's answer came back with the close, and the close's answer adds to it
    assert closed.json() == {"conversation": chat.room_id, "transcript_lines": 3}
    assert conversations[chat.room_id]["said"] == ["Hi, my order has not arrived."]


async def test_what_rocketchat_is_told_about_bad_requests(rocketchat):
    assert (await rocketchat.send_test()).json() == {"ok": True}  # the Send Test button
    rocketchat.token = "a guess"
    refused = await rocketchat.chat().start()
    assert (refused.status, refused.json()["error"]) == (401, "invalid_token")
