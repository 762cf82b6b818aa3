"""A receiver with decorated handlers: run it with

    OMNIHOOK_TOKEN=s3cret uv run omnihook serve --app examples.handlers:router

and point Rocket.Chat's Webhook URL (Omnichannel > Webhooks) at http://HOST:8000/rocketchat.
"""

from __future__ import annotations

import logging
from typing import Any

from omnihook.contracts import AnyEvent, EventType, LivechatSession, MessageEvent, RoomEvent
from omnihook.receiver import HandlerContext, Router

log = logging.getLogger("examples.handlers")

router = Router()

# A stand-in for your CRM: room id -> what we know about the conversation.
conversations: dict[str, dict[str, Any]] = {}


@router.on(EventType.CHAT_START, EventType.LEAD_CAPTURE)
async def remember_visitor(event: RoomEvent) -> dict[str, Any]:
    record = conversations.setdefault(event.room_id, {})
    record.update(name=event.visitor.display_name, email=event.visitor.first_email)
    # The mapping goes back to Rocket.Chat as the room's crmData and returns in later events.
    return {"conversation": event.room_id}


@router.on_visitor_message
def visitor_said(event: MessageEvent) -> None:
    # A plain function runs in a worker thread, so blocking calls here do not stall the server.
    if event.message is not None:
        conversations.setdefault(event.room_id, {}).setdefault("said", []).append(
            event.message.text
        )


@router.on(EventType.CHAT_CLOSE)
async def closed(event: LivechatSession, context: HandlerContext) -> dict[str, Any]:
    record = conversations.setdefault(event.room_id, {})
    record["transcript"] = event.transcript()
    record["closed_by"] = event.closer
    return {"transcript_lines": len(event.messages)}


@router.on_any
async def audit(event: AnyEvent) -> None:
    log.info("%s for room %s", event.type, event.room_id)
