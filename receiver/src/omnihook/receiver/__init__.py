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
from .event_log import describe, logging_router
from .rest import ReplyError, ReplyRefused, RocketChatApi
from .router import (
    DispatchOutcome,
    DispatchResult,
    HandlerContext,
    HandlerFailure,
    HandlerFailures,
    HandlerTimeout,
    PermanentError,
    RetryAfter,
    Router,
)
from .timeline import Position, is_stale, position_of
from .triggers import TriggerRequest
from .tuning import tune_process
from .verification import TOKEN_HEADER, TokenCheck, TokenVerifier
from .worker import HandlingPolicy, Worker

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PATH",
    "TOKEN_HEADER",
    "DispatchOutcome",
    "DispatchResult",
    "HandlerContext",
    "HandlerFailure",
    "HandlerFailures",
    "HandlerTimeout",
    "HandlingPolicy",
    "PermanentError",
    "Position",
    "ReplyError",
    "ReplyRefused",
    "RetryAfter",
    "RocketChatApi",
    "Router",
    "TokenCheck",
    "TokenVerifier",
    "TriggerRequest",
    "Worker",
    "create_app",
    "describe",
    "is_stale",
    "logging_router",
    "position_of",
    "tune_process",
]
