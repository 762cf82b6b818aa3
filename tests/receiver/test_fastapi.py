"""FastAPI: the dependency's typed events and omnihook's refusals, a router from a Router (inline
and with a store whose worker runs with the app), and the webhook in FastAPI's OpenAPI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI

from omnihook.contracts import TOKEN_HEADER, AnyEvent, LivechatSession, samples
from omnihook.receiver import HandlerContext, Router
from omnihook.receiver.fastapi import install, rocketchat_event, rocketchat_router

from ..conftest import UvicornThread

TOKEN = "fastapi-token"
# At module level: FastAPI reads the annotation by its name (this module's annotations are text).
Delivery = Annotated[AnyEvent, Depends(rocketchat_event(tokens=[TOKEN]))]


def typed_app(with_install: bool = True) -> FastAPI:
    app = FastAPI()
    if with_install:
        install(app)

    @app.post("/hook")
    async def hook(event: Delivery) -> dict[str, Any]:
        closed = isinstance(event, LivechatSession)
        return {"type": event.type, "room": event.room_id, "closed": closed}

    return app


async def post(app: Any, path: str, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({TOKEN_HEADER: token} if token else {})}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f") as c:
        return await c.post(path, content=body, headers=headers)


async def test_the_dependency_gives_typed_events_and_refuses_as_omnihook_does() -> None:
    app = typed_app()
    close = json.dumps(samples.sample("chat-close")).encode()
    accepted = await post(app, "/hook", close)
    assert accepted.json() == {
        "type": "LivechatSession",
        "room": "hX4Lq2rNwPZ8Kc7Ry",
        "closed": True,
    }
    refused = await post(app, "/hook", close, token=None)
    assert (refused.status_code, refused.json()["error"]) == (401, "missing_token")
    wrong = await post(app, "/hook", close, token="guess")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
    broken = await post(app, "/hook", b"{not json")
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    invalid = await post(app, "/hook", b'{"type": "Message", "_id": 5}')
    assert (invalid.status_code, invalid.json()["error"]) == (422, "contract_violation")
    plain = await post(typed_app(with_install=False), "/hook", close, token=None)
    assert plain.status_code == 401
    assert plain.json()["detail"]["error"] == "missing_token"  # FastAPI's own envelope


async def test_a_router_inline_runs_its_handlers() -> None:
    router = Router()
    seen: list[str] = []

    @router.on("LivechatSession")
    async def archive(event: Any, context: HandlerContext) -> dict[str, str]:
        seen.append(event.room_id)
        return {"archived": "yes"}

    app = FastAPI()
    app.include_router(rocketchat_router(router, tokens=[TOKEN]))
    answer = await post(app, "/rocketchat", json.dumps(samples.sample("chat-close")).encode())
    assert answer.status_code == 200
    assert answer.json()["archived"] == "yes"
    assert seen == ["hX4Lq2rNwPZ8Kc7Ry"]
    refused = await post(app, "/rocketchat", b"{}", token="guess")
    assert refused.json()["error"] == "invalid_token"


def test_a_router_with_a_store_handles_through_its_worker(tmp_path: Path) -> None:
    router = Router()
    seen: list[str] = []

    @router.on("LivechatSession")
    async def archive(event: Any, context: HandlerContext) -> None:
        seen.append(context.source)

    app = FastAPI()
    app.include_router(rocketchat_router(router, tokens=[TOKEN],
                                         store=f"sqlite:///{tmp_path / 'omnihook.db'}"))  # fmt: skip
    server = UvicornThread(app)
    server.server.config.lifespan = "on"  # the router's lifespan starts the worker
    with server:
        answer = httpx.post(f"{server.url}/rocketchat", json=samples.sample("chat-close"),
                            headers={TOKEN_HEADER: TOKEN})  # fmt: skip
        assert answer.status_code == 200
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    assert seen == ["webhook"]


def test_the_webhook_and_its_payloads_are_in_the_openapi_document() -> None:
    app = FastAPI()
    app.include_router(rocketchat_router(Router(), tokens=[TOKEN]))
    operation = app.openapi()["paths"]["/rocketchat"]["post"]
    assert {"200", "401", "413", "422", "503"} <= set(operation["responses"])
    assert operation["parameters"][0]["name"] == TOKEN_HEADER
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    text = json.dumps(schema)
    assert "$defs" not in text  # inlined: refs resolve inside the OpenAPI document
    assert "LivechatSession" in text
