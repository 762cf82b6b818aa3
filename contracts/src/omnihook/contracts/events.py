"""The nine webhook payloads, one model per wire ``type``, and the union that tells them apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from .dates import RocketChatDate, format_date
from .event_type import EventType
from .lenient_json import loads as _loads_json
from .parts import (
    Agent,
    ChatMessage,
    ClosedBy,
    OfflineVisitor,
    OldServedBy,
    ServedBy,
    Visitor,
)
from .wire import WireModel

__all__ = [
    "SEND_TEST_ROOM_ID",
    "AnyEvent",
    "Event",
    "LeadCapture",
    "LivechatEdit",
    "LivechatOfflineMessage",
    "LivechatSession",
    "LivechatSessionForwarded",
    "LivechatSessionQueued",
    "LivechatSessionStart",
    "LivechatSessionTaken",
    "Message",
    "MessageEvent",
    "RoomEvent",
    "UnknownEvent",
    "WireEvent",
]

SEND_TEST_ROOM_ID = "fasd6f5a4sd6f8a4sdf"
"""The room ``_id`` of the admin page's Send Test sample (``/api/v1/livechat/webhook.test``)."""


class WireEvent(WireModel):
    """Anything Rocket.Chat posts to the webhook URL: it always has a ``type``."""

    event_type: ClassVar[EventType | None] = None
    """The catalogue entry of this model (``None`` for an unknown type)."""

    if TYPE_CHECKING:
        # Each concrete model declares `type` itself, where Rocket.Chat puts it in the document
        # (after `crmData` in room events), so dumps keep Rocket.Chat's key order.
        type: str

    def model_post_init(self, context: Any, /) -> None:
        # Rocket.Chat always writes `type`; count it as present even when a user builds the model
        # without passing it, so that dumps (which keep only present keys) carry it.
        self.__pydantic_fields_set__.add("type")

    @property
    def room_id(self) -> str | None:
        """The room this event belongs to (``None`` for offline messages)."""
        return None

    @property
    def is_test(self) -> bool:
        """Whether this is the admin page's Send Test sample (never push it into a CRM)."""
        return False


class RoomEvent(WireEvent):
    """The room envelope shared by every event except the offline message."""

    id: str = Field(alias="_id")
    label: str | None = None
    topic: str | None = None
    created_at: RocketChatDate = Field(alias="createdAt")
    last_message_at: RocketChatDate | None = Field(default=None, alias="lastMessageAt")
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = Field(default=None, alias="customFields")
    visitor: Visitor
    agent: Agent | None = None
    crm_data: Any = Field(default=None, alias="crmData")
    """What the webhook endpoint answered earlier for this room: text (current) or object (old)."""
    type: str
    messages: list[ChatMessage] = Field(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        # `messages` is always on the wire (possibly empty), like `type`.
        self.__pydantic_fields_set__.update(("type", "messages"))

    @property
    def room_id(self) -> str:
        return self.id

    @property
    def is_test(self) -> bool:
        return self.id == SEND_TEST_ROOM_ID and self.visitor.id == ""

    def parsed_crm_data(self) -> Any:
        """``crmData`` decoded: the object a JSON string holds, else the value as sent.

        Current versions store the raw response text of the last 200 (``'{"id": "42"}'``), older
        ones an object; both come back as a ``dict`` here. Text that is not JSON stays the text,
        unchanged, and so does JSON nested too deeply for Python to decode (``[[[[…]]]]`` a
        thousand levels): this never raises. Lone surrogates in the decoded JSON (``"\\ud800"``)
        become U+FFFD, as everywhere in a parsed payload.
        """
        if isinstance(self.crm_data, str):
            try:
                return _loads_json(self.crm_data)
            except ValueError:  # not JSON, or nested too deeply (TooDeep)
                return self.crm_data
        return self.crm_data

    def transcript(self) -> str:
        """The conversation as plain text, one line per message: ``[time] Name: text``."""
        lines = []
        for message in self.messages:
            name = message.author_name
            if message.is_from_visitor and self.visitor.name and message.u is None:
                name = self.visitor.name
            elif message.is_navigation:  # the visitor's move, though rocket.cat writes it
                name = self.visitor.display_name
            stamp = format_date(message.ts).replace("T", " ")[:19]
            edited = " (edited)" if message.edited_at is not None else ""
            lines.append(f"[{stamp}] {name}: {message.text}{edited}")
        return "\n".join(lines)


class LivechatSessionStart(RoomEvent):
    """Chat Start: the room was created."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_START
    type: Literal["LivechatSessionStart"] = "LivechatSessionStart"
    department_id: str | None = Field(default=None, alias="departmentId")


class LivechatSessionQueued(RoomEvent):
    """Chat Queued: the room entered the queue (older versions: also on return to queue)."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_QUEUED
    type: Literal["LivechatSessionQueued"] = "LivechatSessionQueued"
    department_id: str | None = Field(default=None, alias="departmentId")


class LivechatSessionTaken(RoomEvent):
    """Chat Taken: an agent took the inquiry."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_TAKEN
    type: Literal["LivechatSessionTaken"] = "LivechatSessionTaken"
    department_id: str | None = Field(default=None, alias="departmentId")
    served_by: ServedBy | None = Field(default=None, alias="servedBy")


class LivechatSessionForwarded(RoomEvent):
    """Forwarding: to another agent (``oldServedBy``) or department (``oldDepartmentId``)."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_FORWARDED
    type: Literal["LivechatSessionForwarded"] = "LivechatSessionForwarded"
    department_id: str | None = Field(default=None, alias="departmentId")
    served_by: ServedBy | None = Field(default=None, alias="servedBy")
    old_department_id: str | None = Field(default=None, alias="oldDepartmentId")
    old_served_by: OldServedBy | None = Field(default=None, alias="oldServedBy")

    @property
    def to_department(self) -> bool:
        """Whether the chat was forwarded to a department rather than to an agent."""
        return self.old_department_id is not None and self.old_served_by is None


class LivechatSession(RoomEvent):
    """Chat Close: the room was closed; ``messages`` include the closing message."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_CLOSE
    type: Literal["LivechatSession"] = "LivechatSession"
    department_id: str | None = Field(default=None, alias="departmentId")
    served_by: ServedBy | None = Field(default=None, alias="servedBy")
    closed_at: RocketChatDate | None = Field(default=None, alias="closedAt")
    closed_by: ClosedBy | None = Field(default=None, alias="closedBy")
    closer: str | None = None
    """``"user"`` (an agent), ``"visitor"``, or in newer versions ``"bot"``."""


class MessageEvent(RoomEvent):
    """Visitor or Agent Message (wire type ``Message``): ``messages`` holds exactly that message."""

    event_type: ClassVar[EventType | None] = EventType.MESSAGE
    type: Literal["Message"] = "Message"

    @property
    def message(self) -> ChatMessage | None:
        """The message this event is about."""
        return self.messages[0] if self.messages else None

    @property
    def is_agent_message(self) -> bool:
        """Whether an agent wrote it (the message carries ``agentId`` and is no navigation
        message, which Rocket.Chat marks ``agentId: "rocket.cat"``)."""
        return self.message is not None and self.message.is_from_agent

    @property
    def is_visitor_message(self) -> bool:
        """Whether the visitor wrote it (no ``agentId``, no ``navigation``)."""
        return self.message is not None and self.message.is_from_visitor

    @property
    def is_navigation(self) -> bool:
        """Whether the message is a navigation-history one: the visitor moved to another page
        (``message.navigation`` says which). Neither an agent's nor a visitor's message."""
        return self.message is not None and self.message.is_navigation


Message = MessageEvent
"""The wire name of :class:`MessageEvent`."""


class LeadCapture(RoomEvent):
    """Lead Capture: a visitor message matched the lead email/phone pattern; ``messages`` is empty."""

    event_type: ClassVar[EventType | None] = EventType.LEAD_CAPTURE
    type: Literal["LeadCapture"] = "LeadCapture"


class LivechatEdit(RoomEvent):
    """Chat Edit: room information was edited after the room was closed."""

    event_type: ClassVar[EventType | None] = EventType.CHAT_EDIT
    type: Literal["LivechatEdit"] = "LivechatEdit"


class LivechatOfflineMessage(WireEvent):
    """Offline Message: the offline form was submitted. No room, no ``messages``."""

    event_type: ClassVar[EventType | None] = EventType.OFFLINE_MESSAGE
    type: Literal["LivechatOfflineMessage"] = "LivechatOfflineMessage"
    sent_at: RocketChatDate | None = Field(default=None, alias="sentAt")
    visitor: OfflineVisitor
    message: str | None = None


class UnknownEvent(WireEvent):
    """A payload whose ``type`` this version of omnihook does not know (a newer Rocket.Chat).

    Every field is kept in ``model_extra``; catch-all handlers receive it.
    """

    type: str

    @property
    def room_id(self) -> str | None:
        value = (self.model_extra or {}).get("_id")
        return value if isinstance(value, str) else None


Event = Annotated[
    LivechatSessionStart
    | LivechatSessionQueued
    | LivechatSessionTaken
    | LivechatSessionForwarded
    | LivechatSession
    | LivechatOfflineMessage
    | MessageEvent
    | LeadCapture
    | LivechatEdit,
    Field(discriminator="type"),
]
"""Any of the nine known payloads, told apart by ``type``."""

AnyEvent = (
    LivechatSessionStart
    | LivechatSessionQueued
    | LivechatSessionTaken
    | LivechatSessionForwarded
    | LivechatSession
    | LivechatOfflineMessage
    | MessageEvent
    | LeadCapture
    | LivechatEdit
    | UnknownEvent
)
"""What :func:`omnihook.contracts.parse_event` returns: a known payload or an ``UnknownEvent``."""

EVENT_MODELS: dict[EventType, type[WireEvent]] = {
    EventType.CHAT_START: LivechatSessionStart,
    EventType.CHAT_QUEUED: LivechatSessionQueued,
    EventType.CHAT_TAKEN: LivechatSessionTaken,
    EventType.CHAT_FORWARDED: LivechatSessionForwarded,
    EventType.CHAT_CLOSE: LivechatSession,
    EventType.OFFLINE_MESSAGE: LivechatOfflineMessage,
    EventType.MESSAGE: MessageEvent,
    EventType.LEAD_CAPTURE: LeadCapture,
    EventType.CHAT_EDIT: LivechatEdit,
}
"""The model of each event type."""
