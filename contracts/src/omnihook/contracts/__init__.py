"""omnihook.contracts: the models of every payload Rocket.Chat's Omnichannel webhooks send.

>>> from omnihook.contracts import parse_event, samples
>>> event = parse_event(samples.sample("chat-close"))
>>> event.type, event.visitor.first_email
('LivechatSession', 'jane.doe@example.com')
"""

from . import building, samples
from .building import (
    BuildSettings,
    RoomRecords,
    build_lead_capture,
    build_message_event,
    build_offline_message,
    build_room_event,
)
from .check import PayloadCheck, check_payload
from .dates import RocketChatDate, format_date, utc_now
from .event_type import ADMIN_SWITCHES, AdminSwitch, EventType
from .events import (
    SEND_TEST_ROOM_ID,
    AnyEvent,
    Event,
    LeadCapture,
    LivechatEdit,
    LivechatOfflineMessage,
    LivechatSession,
    LivechatSessionForwarded,
    LivechatSessionQueued,
    LivechatSessionStart,
    LivechatSessionTaken,
    Message,
    MessageEvent,
    RoomEvent,
    UnknownEvent,
    WireEvent,
)
from .identity import MOMENT_TOLERANCE, event_identity, identities_match, message_identity
from .parsing import ContractError, Problem, format_path, parse_event, unknown_fields
from .parts import (
    Agent,
    AgentEmail,
    ChatMessage,
    ClosedBy,
    FileUpload,
    MessageAuthor,
    Navigation,
    NavigationLocation,
    NavigationPage,
    OfflineVisitor,
    OldServedBy,
    ServedBy,
    Visitor,
    VisitorEmail,
    VisitorPhone,
)
from .schema import json_schema
from .tokens import TOKEN_HEADER
from .wire import WireModel, encode_json

__all__ = [
    "ADMIN_SWITCHES",
    "MOMENT_TOLERANCE",
    "SEND_TEST_ROOM_ID",
    "TOKEN_HEADER",
    "AdminSwitch",
    "Agent",
    "AgentEmail",
    "AnyEvent",
    "BuildSettings",
    "ChatMessage",
    "ClosedBy",
    "ContractError",
    "Event",
    "EventType",
    "FileUpload",
    "LeadCapture",
    "LivechatEdit",
    "LivechatOfflineMessage",
    "LivechatSession",
    "LivechatSessionForwarded",
    "LivechatSessionQueued",
    "LivechatSessionStart",
    "LivechatSessionTaken",
    "Message",
    "MessageAuthor",
    "MessageEvent",
    "Navigation",
    "NavigationLocation",
    "NavigationPage",
    "OfflineVisitor",
    "OldServedBy",
    "PayloadCheck",
    "Problem",
    "RocketChatDate",
    "RoomEvent",
    "RoomRecords",
    "ServedBy",
    "UnknownEvent",
    "Visitor",
    "VisitorEmail",
    "VisitorPhone",
    "WireEvent",
    "WireModel",
    "build_lead_capture",
    "build_message_event",
    "build_offline_message",
    "build_room_event",
    "building",
    "check_payload",
    "encode_json",
    "event_identity",
    "format_date",
    "format_path",
    "identities_match",
    "json_schema",
    "message_identity",
    "parse_event",
    "samples",
    "unknown_fields",
    "utc_now",
]
