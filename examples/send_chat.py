"""Play a whole chat to a webhook URL, as Rocket.Chat would, echoing crmData like it does:

OMNIHOOK_TOKEN=s3cret uv run python examples/send_chat.py http://127.0.0.1:8000/rocketchat
"""

from __future__ import annotations

import asyncio
import os
import sys

from omnihook.contracts import samples
from omnihook.sender import RetryPolicy, Sender

CHAT = ["chat-start", "chat-queued", "chat-taken", "visitor-message", "agent-message", "chat-close"]


async def play(url: str, token: str | None) -> bool:
    crm_data: dict[str, str] = {}

    def remember(room_id: str, text: str) -> None:
        crm_data[room_id] = (
            text  # what Rocket.Chat stores and sends back with the room's next events
        )

    async with Sender(
        url, token=token, policy=RetryPolicy.rocketchat(), on_response=remember
    ) as sender:
        for name in CHAT:
            payload = samples.sample(name)
            payload.pop("crmData", None)
            if payload["_id"] in crm_data:
                payload["crmData"] = crm_data[payload["_id"]]
            delivery = await sender.send(payload)
            print(f"{name:16} -> {delivery.status} {delivery.response_text or delivery.error}")
            if not delivery.ok:
                return False
    return True


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    token = os.environ.get("OMNIHOOK_TOKEN", "").split(",")[0] or None
    sys.exit(0 if asyncio.run(play(sys.argv[1], token)) else 1)
