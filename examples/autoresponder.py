"""An auto-responder: answers visitors in the chat, through Rocket.Chat's REST API as a bot.

    export OMNIHOOK_TOKEN=...                                  # the webhook's Secret Token
    export OMNIHOOK_ROCKETCHAT_URL=https://chat.example.com    # where the bot posts
    export OMNIHOOK_ROCKETCHAT_USER_ID=... OMNIHOOK_ROCKETCHAT_AUTH_TOKEN=...   # the bot's personal access token
    uv run omnihook serve --app examples.autoresponder:router

- Outside office hours (OFFICE_HOURS="09-17", in UTC), the first visitor message of a chat gets a
  note that an agent will answer in the morning.
- A visitor asking about "order" gets the status of the order in their ``orderId`` custom field.
- As a Livechat trigger's external service (Omnichannel > Livechat Triggers > "Send message
  (external service)", URL http://HOST:8000/rocketchat/trigger), it greets returning visitors.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from omnihook.contracts import MessageEvent
from omnihook.receiver import HandlerContext, Router, TriggerRequest

router = Router()

# A stand-in for your order system.
ORDERS = {
    "A-10042": "shipped on Monday, tracking number 1Z999AA10123456784",
    "A-20001": "being packed",
}


def office_open(now: datetime | None = None) -> bool:
    start, _, end = os.environ.get("OFFICE_HOURS", "09-17").partition("-")
    hour = (now or datetime.now(UTC)).hour
    return int(start) <= hour < int(end)


@router.on_visitor_message
async def answer(event: MessageEvent, context: HandlerContext) -> None:
    if context.stale or event.message is None:
        return  # an old message arriving late: do not answer it now
    text = event.message.text.lower()
    if "order" in text:
        order = (event.visitor.custom_fields or {}).get("orderId") or (
            event.custom_fields or {}
        ).get("orderId")
        status = ORDERS.get(str(order)) if order else None
        await context.reply(
            f"Your order {order} is {status}." if status else "Which order number is it about?"
        )
    elif not office_open(event.message.ts) and len(event.messages) == 1:
        await context.reply(
            "Thanks for your message! Our team is offline now and will answer from 9:00 UTC."
        )


@router.trigger
def greet(request: TriggerRequest) -> list[str]:
    page = request.metadata.get("page", "our site")
    return [f"Welcome back! Need help with {page}?", "An agent is one click away."]
