"""The router the Django test site's settings name."""

from typing import Any

from omnihook.receiver import Router

router = Router()
closed: list[str] = []


@router.on("LivechatSession")
async def remember(event: Any) -> dict[str, str]:
    closed.append(event.id)
    return {"archived": event.id}
