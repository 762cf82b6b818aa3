"""The catalogue of webhook events: wire ``type`` strings and the admin page's switches."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["ADMIN_SWITCHES", "AdminSwitch", "EventType"]


class EventType(StrEnum):
    """The nine values of ``type`` that Rocket.Chat puts on the wire.

    Member names follow the admin page (Omnichannel > Webhooks), values are the wire strings:
    ``EventType.CHAT_CLOSE == "LivechatSession"``. Visitor and agent messages share
    ``EventType.MESSAGE``; they are told apart by the message's ``agentId``.
    """

    CHAT_START = "LivechatSessionStart"
    CHAT_QUEUED = "LivechatSessionQueued"
    CHAT_TAKEN = "LivechatSessionTaken"
    CHAT_FORWARDED = "LivechatSessionForwarded"
    CHAT_CLOSE = "LivechatSession"
    OFFLINE_MESSAGE = "LivechatOfflineMessage"
    MESSAGE = "Message"
    LEAD_CAPTURE = "LeadCapture"
    CHAT_EDIT = "LivechatEdit"

    @property
    def label(self) -> str:
        """How people call the event: the admin switch's name where there is one."""
        return _LABELS[self]

    @property
    def has_room(self) -> bool:
        """Whether the payload is a room envelope (every type but the offline message)."""
        return self is not EventType.OFFLINE_MESSAGE

    @classmethod
    def lookup(cls, name: str) -> EventType:
        """Find an event type by wire string, member name, label or sample-style slug.

        ``"LivechatSession"``, ``"CHAT_CLOSE"``, ``"Chat Close"`` and ``"chat-close"`` all give
        ``EventType.CHAT_CLOSE``. Raises ``ValueError`` listing the known names otherwise.
        """
        key = _normalise(name)
        for member in cls:
            if key in {
                _normalise(member.value),
                _normalise(member.name),
                _normalise(member.label),
            }:
                return member
        for switch in ADMIN_SWITCHES:
            if key == _normalise(switch.label):
                return switch.event_type
        known = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown event type {name!r}; known types: {known}")


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_LABELS: dict[EventType, str] = {
    EventType.CHAT_START: "Chat Start",
    EventType.CHAT_QUEUED: "Chat Queued",
    EventType.CHAT_TAKEN: "Chat Taken",
    EventType.CHAT_FORWARDED: "Forwarding",
    EventType.CHAT_CLOSE: "Chat Close",
    EventType.OFFLINE_MESSAGE: "Offline Messages",
    EventType.MESSAGE: "Visitor/Agent Messages",
    EventType.LEAD_CAPTURE: "Lead Capture",
    EventType.CHAT_EDIT: "Chat Edit",
}


@dataclass(frozen=True)
class AdminSwitch:
    """One switch of the admin page (or admin setting) that turns an event on."""

    label: str
    setting: str
    event_type: EventType
    author: Literal["visitor", "agent"] | None = None
    """For the two message switches: whose messages the switch sends."""


ADMIN_SWITCHES: tuple[AdminSwitch, ...] = (
    AdminSwitch("Chat Start", "Livechat_webhook_on_start", EventType.CHAT_START),
    AdminSwitch("Chat Close", "Livechat_webhook_on_close", EventType.CHAT_CLOSE),
    AdminSwitch("Chat Taken", "Livechat_webhook_on_chat_taken", EventType.CHAT_TAKEN),
    AdminSwitch("Chat Queued", "Livechat_webhook_on_chat_queued", EventType.CHAT_QUEUED),
    AdminSwitch("Forwarding", "Livechat_webhook_on_forward", EventType.CHAT_FORWARDED),
    AdminSwitch("Offline Messages", "Livechat_webhook_on_offline_msg", EventType.OFFLINE_MESSAGE),
    AdminSwitch(
        "Visitor Messages",
        "Livechat_webhook_on_visitor_message",
        EventType.MESSAGE,
        "visitor",
    ),
    AdminSwitch(
        "Agent Messages",
        "Livechat_webhook_on_agent_message",
        EventType.MESSAGE,
        "agent",
    ),
    AdminSwitch("Lead Capture", "Livechat_webhook_on_capture", EventType.LEAD_CAPTURE),
)
"""The admin page's eight switches plus the lead-capture setting; ``LivechatEdit`` has none."""
