"""omnihook.sender: emit Rocket.Chat Omnichannel webhook events with Rocket.Chat's semantics.

>>> from omnihook.sender import RetryPolicy, Sender
>>> sender = Sender("https://crm.example/hook", token="s3cret", policy=RetryPolicy.rocketchat())
"""

from .clock import Clock, FakeClock, SystemClock
from .outbox import OutboxDispatcher, with_crm_data
from .policy import RetryPolicy
from .sender import (
    SEND_TEST_TIMEOUT,
    Attempt,
    Delivery,
    Payload,
    Sender,
    encode_payload,
)
from .simulate import Dropped, Drops, Simulation, SimulationReport, play
from .transport import HttpResponse, HttpTransport, TransportError
from .trigger import TriggerAnswer, call_trigger_service

__all__ = [
    "SEND_TEST_TIMEOUT",
    "Attempt",
    "Clock",
    "Delivery",
    "Dropped",
    "Drops",
    "FakeClock",
    "HttpResponse",
    "HttpTransport",
    "OutboxDispatcher",
    "Payload",
    "RetryPolicy",
    "Sender",
    "Simulation",
    "SimulationReport",
    "SystemClock",
    "TransportError",
    "TriggerAnswer",
    "call_trigger_service",
    "encode_payload",
    "play",
    "with_crm_data",
]
