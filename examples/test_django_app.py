"""examples/django_app played by the kit's `rocketchat` fixture, the project run by uvicorn in a
process of its own (Django's settings are one per process)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
TOKEN = "django-example-token"


@pytest.fixture(scope="module")
def django_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "django_app.settings", "OMNIHOOK_TOKEN": TOKEN}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "django_app.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=HERE,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def rocketchat_target(django_url):
    return f"{django_url}/rocketchat"


@pytest.fixture
def rocketchat_token():
    return TOKEN


async def test_a_whole_chat_reaches_the_django_project(rocketchat):
    chat = rocketchat.chat(visitor_name="Jane Doe")
    await chat.start()
    await chat.visitor_says("Hello from Django?")
    closed = await chat.close(by="visitor")
    chat.assert_all_ok()
    assert closed.json()["transcript_lines"] >= 1
    rocketchat.token = "a guess"
    refused = await rocketchat.chat().start()
    assert (refused.status, refused.json()["error"]) == (401, "invalid_token")
