"""omnihook.receiver: verify, parse and route Rocket.Chat Omnichannel webhooks.

>>> from omnihook.contracts import EventType
>>> from omnihook.receiver import Router, create_app
>>> router = Router()
>>> @router.on(EventType.CHAT_CLOSE)
... async def closed(event):
...     return {"ticket": "T-1"}
>>> app = create_app(router, tokens=["s3cret"])
"""

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, create_app
from .console import describe, logging_router
from .router import (
    DispatchResult,
    HandlerContext,
    HandlerFailure,
    HandlerFailures,
    Router,
)
from .verification import TOKEN_HEADER, TokenCheck, TokenVerifier

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PATH",
    "TOKEN_HEADER",
    "DispatchResult",
    "HandlerContext",
    "HandlerFailure",
    "HandlerFailures",
    "Router",
    "TokenCheck",
    "TokenVerifier",
    "create_app",
    "describe",
    "logging_router",
]
