"""What the project does with Rocket.Chat's events."""

from typing import Any

from omnihook.contracts import LivechatSession
from omnihook.receiver import Router

router = Router()


@router.on("LivechatSession")
async def closed(event: LivechatSession) -> dict[str, Any]:
    return {"transcript_lines": len(event.messages)}  # back to Rocket.Chat as crmData
