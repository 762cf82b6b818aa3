"""A bridge in code: a CRM adapter and your own handler on one router.

export OMNIHOOK_TOKEN=... HUBSPOT_TOKEN=pat-...
uv run omnihook serve --app examples.bridge_code:router
uv run omnihook worker --app examples.bridge_code:router      # more workers, if you like
"""

from __future__ import annotations

import logging
import os
from typing import Any

from omnihook.contracts import EventType, LivechatSession
from omnihook.receiver import HandlerContext, Router
from omnihook.receiver.crm import HubSpotAdapter

log = logging.getLogger("examples.bridge")

router = Router()

HubSpotAdapter(
    token=os.environ.get("HUBSPOT_TOKEN", ""),
    base_url=os.environ.get("HUBSPOT_BASE_URL", "https://api.hubapi.com"),
    field_map={"plan": "plan"},
    chat_url="https://chat.example.com/omnichannel/current/{room_id}",
).register(router)


@router.on(EventType.CHAT_CLOSE)
async def flag_unhappy_chats(
    event: LivechatSession, context: HandlerContext
) -> dict[str, Any] | None:
    """Your own rule beside the adapter: a chat closed by the visitor gets a follow-up flag."""
    if context.stale or event.closer != "visitor":
        return None
    log.info("visitor left room %s: follow up", event.room_id)
    return {"followUp": True}
