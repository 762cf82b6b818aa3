"""omnihook.sender: emit Rocket.Chat Omnichannel webhook events with Rocket.Chat's semantics.

>>> from omnihook.sender import RetryPolicy, Sender
>>> sender = Sender("https://crm.example/hook", token="s3cret", policy=RetryPolicy.rocketchat())
"""

from .clock import Clock, FakeClock, SystemClock
from .policy import RetryPolicy
from .sender import (
    SEND_TEST_TIMEOUT,
    Attempt,
    Delivery,
    Payload,
    Sender,
    encode_payload,
)
from .transport import HttpResponse, HttpTransport, TransportError

__all__ = [
    "SEND_TEST_TIMEOUT",
    "Attempt",
    "Clock",
    "Delivery",
    "FakeClock",
    "HttpResponse",
    "HttpTransport",
    "OutboxDispatcher",
    "Payload",
    "RetryPolicy",
    "Sender",
    "SystemClock",
    "TransportError",
    "encode_payload",
    "with_crm_data",
]
