"""The receivers under test, each an app factory for ``uvicorn --factory``.

Every one answers the same request (a ``Message`` event with the token header) on
``/rocketchat``; the store variants read their store URL from ``BENCH_STORE``.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnihook.receiver import Router, create_app
from omnihook.receiver.tuning import tune_process

TOKEN = "bench-token"


def bare() -> Starlette:
    """The ceiling: a Starlette endpoint that only reads the body."""

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    return Starlette(routes=[Route("/rocketchat", endpoint, methods=["POST"])])


class _Visitor(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(alias="_id")
    token: str
    username: str | None = None
    name: str | None = None
    email: list[dict[str, Any]] | str | None = None
    phone: list[dict[str, Any]] | str | None = None


class _ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(alias="_id")
    username: str | None = None
    msg: str | None = None
    ts: datetime
    agent_id: str | None = Field(None, alias="agentId")


class _LivechatPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    id: str = Field(alias="_id")
    visitor: _Visitor
    agent: dict[str, Any] | None = None
    messages: list[_ChatMessage] = []
    tags: list[str] | None = None
    crm_data: Any = Field(None, alias="crmData")


def fastapi_handwritten() -> FastAPI:
    """What users write today: FastAPI, their own pydantic model of the payload, a token check."""
    app = FastAPI()

    @app.post("/rocketchat")
    async def rocketchat(
        payload: _LivechatPayload,
        x_rocketchat_livechat_token: str | None = Header(default=None),
    ) -> dict[str, bool]:
        if not secrets.compare_digest(x_rocketchat_livechat_token or "", TOKEN):
            raise HTTPException(status_code=401, detail="invalid token")
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _router() -> Router:
    router = Router()

    @router.on_any
    async def noop(event: object) -> None:
        return None

    return router


def inline() -> Starlette:
    """omnihook without a store: token, parse, route, answer, in a process tuned as
    ``omnihook serve`` tunes its own."""
    tune_process()
    return create_app(_router(), tokens=[TOKEN])


def stored() -> Starlette:
    """omnihook with a store: token, parse, commit (group commits), answer. Handling is left to
    workers elsewhere, so the number is what one receiver process accepts. The process is tuned
    as ``omnihook serve`` tunes its own."""
    tune_process()
    return create_app(_router(), tokens=[TOKEN], store=os.environ["BENCH_STORE"], run_worker=False)
