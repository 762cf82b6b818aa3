"""Flask (and any WSGI app): the webhook mounted inline, sync handlers, omnihook's answers;
tested with Flask's test client."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from flask import Flask

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.receiver import Router
from omnihook.receiver.wsgi import mount, wsgi_app

TOKEN = "flask-token"


def flask_app(seen: list[tuple[str, str]]) -> Flask:
    router = Router()

    @router.on("LivechatSession")
    def closed(event: Any) -> dict[str, str]:  # a plain function, as Flask code is
        seen.append((event.room_id, threading.current_thread().name))
        return {"archived": event.room_id}

    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return "the rest of the app"

    mount(app, "/rocketchat", router, tokens=[TOKEN])
    return app


def test_flask_answers_rocket_chat_as_omnihook_does() -> None:
    seen: list[tuple[str, str]] = []
    client = flask_app(seen).test_client()
    close = json.dumps(samples.sample("chat-close"))
    answer = client.post("/rocketchat", data=close, headers={TOKEN_HEADER: TOKEN,
                                                             "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.get_json()["archived"] == "hX4Lq2rNwPZ8Kc7Ry"
    assert [room for room, _ in seen] == ["hX4Lq2rNwPZ8Kc7Ry"]
    refused = client.post("/rocketchat", data=close, headers={"Content-Type": "application/json"})
    assert (refused.status_code, refused.get_json()["error"]) == (401, "missing_token")
    broken = client.post("/rocketchat", data=b'{"type": "Message", "_id": 3}',
                         headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"})  # fmt: skip
    assert (broken.status_code, broken.get_json()["error"]) == (422, "contract_violation")
    test = client.post("/rocketchat", data=json.dumps(samples.send_test_sample()),
                       headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"})  # fmt: skip
    assert test.get_json() == {"ok": True}  # Send Test
    assert client.get("/").data == b"the rest of the app"


def test_a_store_or_a_bad_path_is_refused() -> None:
    with pytest.raises(ValueError, match="runs inline"):
        wsgi_app(Router(), tokens=[TOKEN], store="sqlite:///./omnihook.db")
    with pytest.raises(ValueError, match="path of its own"):
        mount(Flask(__name__), "/", Router(), tokens=[TOKEN])
