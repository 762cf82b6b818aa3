"""Rocket.Chat's webhook in a Flask app (omnihook-receiver[flask]): inline, with plain
functions as handlers.

    OMNIHOOK_TOKEN=s3cret uv run flask --app examples/flask_app.py run
"""

from __future__ import annotations

import os

from flask import Flask

from omnihook.contracts import LivechatSession
from omnihook.receiver import Router
from omnihook.receiver.wsgi import mount

TOKENS = [os.environ.get("OMNIHOOK_TOKEN", "s3cret")]
closed_chats: dict[str, int] = {}  # room -> messages in its transcript

router = Router()


@router.on("LivechatSession")
def remember(event: LivechatSession) -> dict[str, int]:  # sync, like the rest of the app
    closed_chats[event.id] = len(event.messages)
    return {"transcript_lines": len(event.messages)}


app = Flask(__name__)


@app.get("/")
def home() -> str:
    return "a Flask app that also receives Rocket.Chat's webhook at /rocketchat"


mount(app, "/rocketchat", router, tokens=TOKENS)
