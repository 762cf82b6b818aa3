"""examples/flask_app.py played by the kit's `rocketchat` fixture, the app served by a real WSGI
server (werkzeug's) on a loopback port."""

import threading

import pytest
from flask_app import TOKENS, app, closed_chats
from werkzeug.serving import make_server


@pytest.fixture(scope="module")
def flask_url():
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def rocketchat_target(flask_url):
    return f"{flask_url}/rocketchat"


@pytest.fixture
def rocketchat_token():
    return TOKENS[0]


async def test_a_whole_chat_reaches_the_flask_app(rocketchat):
    chat = rocketchat.chat(visitor_name="Jane Doe")
    await chat.start()
    await chat.visitor_says("Hello from Flask?")
    closed = await chat.close(by="visitor")
    chat.assert_all_ok()
    lines = closed.json()["transcript_lines"]
    assert lines >= 1  # the visitor's message (and the closing one, if any)
    assert closed_chats[chat.room_id] == lines
    rocketchat.token = "a guess"
    refused = await rocketchat.chat().start()
    assert (refused.status, refused.json()["error"]) == (401, "invalid_token")
