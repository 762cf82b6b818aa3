"""Rocket.Chat's webhook in a FastAPI app (omnihook-receiver[fastapi]): a Router mounted as an
APIRouter at /rocketchat, and an endpoint of your own taking the typed event.

    OMNIHOOK_TOKEN=s3cret uv run uvicorn fastapi_app:app --app-dir examples
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from omnihook.contracts import AnyEvent, LivechatSession
from omnihook.receiver import Router
from omnihook.receiver.fastapi import install, rocketchat_event, rocketchat_router

TOKENS = [os.environ.get("OMNIHOOK_TOKEN", "s3cret")]
closed_chats: dict[str, list[str]] = {}  # room -> what the visitor said (a CRM would go here)

router = Router()


@router.on("LivechatSession")
async def remember(event: LivechatSession) -> dict[str, Any]:
    said = [m.msg or "" for m in event.messages if m.agent_id is None]  # agents' carry agentId
    closed_chats[event.id] = said
    return {"transcript_lines": len(event.messages)}  # back to Rocket.Chat as crmData


app = FastAPI(title="omnihook in FastAPI")
install(app)  # a refused delivery gets omnihook's status code and body
app.include_router(rocketchat_router(router, tokens=TOKENS))

Delivery = Annotated[AnyEvent, Depends(rocketchat_event(tokens=TOKENS))]


@app.post("/audit")
async def audit(event: Delivery) -> dict[str, Any]:
    """A second webhook URL of your own: the dependency checks, limits and parses."""
    return {"type": event.type, "room": event.room_id}
