"""examples/fastapi_app.py played by the kit's `rocketchat` fixture: a whole chat, a refusal,
and the app's own endpoint."""

import httpx
import pytest
from fastapi_app import TOKENS, app, closed_chats

from omnihook.contracts import TOKEN_HEADER, samples


@pytest.fixture
def rocketchat_target():
    return app  # an ASGI app: the kit posts to /rocketchat in process


@pytest.fixture
def rocketchat_token():
    return TOKENS[0]


async def test_a_whole_chat_reaches_the_fastapi_app(rocketchat):
    chat = rocketchat.chat(visitor_name="Jane Doe")
    await chat.start()
    await chat.take(agent="emma.brown")
    await chat.visitor_says("Where is my order?")
    await chat.agent_says("On its way.")
    closed = await chat.close(by="agent")
    chat.assert_all_ok()
    assert closed.json()["transcript_lines"] >= 2  # and the closing message
    assert closed_chats[chat.room_id] == ["Where is my order?"]
    rocketchat.token = "a guess"
    refused = await rocketchat.chat().start()
    assert (refused.status, refused.json()["error"]) == (401, "invalid_token")


async def test_the_apps_own_endpoint_takes_typed_events():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.post("/audit", json=samples.sample("chat-close"),
                                   headers={TOKEN_HEADER: TOKENS[0]})  # fmt: skip
        assert answer.json() == {"type": "LivechatSession", "room": "hX4Lq2rNwPZ8Kc7Ry"}
        refused = await client.post("/audit", json=samples.sample("chat-close"))
        assert refused.json()["error"] == "missing_token"
