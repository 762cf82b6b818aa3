"""The pieces that payloads are made of: visitor, agent, messages, served-by records."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StrictBool, StrictInt

from .dates import RocketChatDate
from .wire import WireModel

__all__ = [
    "Agent",
    "AgentEmail",
    "ChatMessage",
    "ClosedBy",
    "FileUpload",
    "MessageAuthor",
    "Navigation",
    "NavigationLocation",
    "NavigationPage",
    "OfflineVisitor",
    "OldServedBy",
    "ServedBy",
    "Visitor",
    "VisitorEmail",
    "VisitorPhone",
]


class VisitorEmail(WireModel):
    """One entry of ``visitor.email`` in current versions: ``{"address": "..."}``."""

    address: str


class VisitorPhone(WireModel):
    """One entry of ``visitor.phone`` in current versions: ``{"phoneNumber": "..."}``."""

    phone_number: str = Field(alias="phoneNumber")


# The three forms of `email`/`phone` (a list of objects, a string, null) never overlap: a value
# can match only one of them. Trying them in order therefore picks the same form, and reports the
# same errors, as pydantic's default "smart" union, which also tries the forms after a match to
# choose the best one; that is about a quarter of a microsecond per visitor on every room event.
_Emails = Annotated[list[VisitorEmail] | str | None, Field(union_mode="left_to_right")]
_Phones = Annotated[list[VisitorPhone] | str | None, Field(union_mode="left_to_right")]


def _addresses(
    value: list[VisitorEmail] | list[VisitorPhone] | list[AgentEmail] | str | None,
) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    found = [e.phone_number if isinstance(e, VisitorPhone) else e.address for e in value]
    return [item for item in found if item.strip()]


class _ContactMixin:
    """Email and phone helpers that work whatever form Rocket.Chat used."""

    if TYPE_CHECKING:
        # Declared by the models themselves, in their wire position (pydantic would otherwise
        # take these annotations as fields and put them first).
        email: list[VisitorEmail] | str | None
        phone: list[VisitorPhone] | str | None

    @property
    def emails(self) -> list[str]:
        """Every non-empty email address, whether sent as objects, a string or null."""
        return _addresses(self.email)

    @property
    def phones(self) -> list[str]:
        """Every non-empty phone number, whether sent as objects, a string or null."""
        return _addresses(self.phone)

    @property
    def first_email(self) -> str | None:
        """The visitor's first email address, or ``None``."""
        emails = self.emails
        return emails[0] if emails else None

    @property
    def first_phone(self) -> str | None:
        """The visitor's first phone number, or ``None``."""
        phones = self.phones
        return phones[0] if phones else None


class Visitor(_ContactMixin, WireModel):
    """``visitor`` of a room event.

    ``email``/``phone`` are lists of objects in current versions, ``null`` in older ones and plain
    strings in the Send Test sample; use ``first_email``/``first_phone`` to read them.
    """

    id: str = Field(alias="_id")
    token: str | None = None
    name: str | None = None
    username: str
    department: str | None = None
    ip: str | None = None
    os: str | None = None
    browser: str | None = None
    custom_fields: dict[str, Any] | None = Field(default=None, alias="customFields")
    email: _Emails = None
    phone: _Phones = None

    @property
    def display_name(self) -> str:
        """The visitor's name, falling back to the username (``guest-12``)."""
        return self.name or self.username


class OfflineVisitor(_ContactMixin, WireModel):
    """``visitor`` of an offline message: what the offline form asked for, email as a string."""

    name: str | None = None
    email: _Emails = None
    phone: _Phones = None

    @property
    def display_name(self) -> str:
        """The visitor's name, falling back to the email address."""
        return self.name or self.first_email or "visitor"


class AgentEmail(WireModel):
    """One entry of ``agent.email`` as Rocket.Chat 0.6x sent it: the user's own ``emails`` entry,
    ``{"address": "...", "verified": true}``."""

    address: str
    verified: StrictBool | None = None


# A string (current versions), null (older ones, when the agent has no email) or the user's
# `emails` array (0.6x: `postData.agent.email = agent.emails`). The string comes first: it is
# what nearly every payload carries, and the forms never overlap.
_AgentEmails = Annotated[str | list[AgentEmail] | None, Field(union_mode="left_to_right")]


class Agent(WireModel):
    """``agent``: the user serving the room; present only once the room is served.

    ``email`` is a string in current versions, ``null`` in older ones when the agent has none, and
    the user's ``emails`` array (:class:`AgentEmail` objects) in Rocket.Chat 0.6x; it is written
    back in the form it came in. Use ``first_email``/``emails`` to read it.
    """

    id: str = Field(alias="_id")
    username: str
    name: str | None = None
    custom_fields: dict[str, Any] | None = Field(default=None, alias="customFields")
    email: _AgentEmails = None

    @property
    def emails(self) -> list[str]:
        """Every non-empty email address of the agent, whichever form Rocket.Chat used."""
        return _addresses(self.email)

    @property
    def first_email(self) -> str | None:
        """The agent's first email address, or ``None``."""
        emails = self.emails
        return emails[0] if emails else None


class ServedBy(WireModel):
    """``servedBy``: who serves the room and since when."""

    id: str = Field(alias="_id")
    username: str | None = None
    ts: RocketChatDate | None = None


class OldServedBy(WireModel):
    """``oldServedBy`` of a forward to another agent."""

    id: str = Field(alias="_id")
    ts: RocketChatDate | None = None
    username: str | None = None


class ClosedBy(WireModel):
    """``closedBy`` of a close event."""

    id: str = Field(alias="_id")
    username: str | None = None


class MessageAuthor(WireModel):
    """``u`` of a message: its author."""

    id: str = Field(alias="_id")
    username: str
    name: str | None = None


class NavigationLocation(WireModel):
    """``navigation.page.location``: where the visitor went."""

    href: str | None = None


class NavigationPage(WireModel):
    """``navigation.page``: the page change the Livechat widget reported (``pageInfo``)."""

    change: str | None = None
    """What changed, as the ``Livechat_history_monitor_type`` setting tracks it: ``"url"`` or
    ``"title"``."""
    title: str | None = None
    location: NavigationLocation | None = None
    token: str | None = None
    """Not where Rocket.Chat puts the visitor's token (that is ``navigation.token``); accepted."""


class Navigation(WireModel):
    """``navigation`` of a navigation-history message: ``{page: {change, title, location:
    {href}}, token}``, where ``token`` is the visitor's Livechat token."""

    page: NavigationPage | None = None
    token: str | None = None


class FileUpload(WireModel):
    """``fileUpload``: where to download a message's file (the URL carries a token)."""

    public_file_path: str | None = Field(default=None, alias="publicFilePath")
    type: str | None = None
    # Strict (as are the booleans here): Rocket.Chat sends a number, and the JSON Schema promises
    # one; pydantic's lax mode would take `false` or "12" for it.
    size: StrictInt | None = None


class ChatMessage(WireModel):
    """One entry of ``messages``.

    Real events carry ``u``, ``_id``, ``rid`` and ``_updatedAt``; the Send Test sample carries
    only ``username``, ``msg``, ``ts`` and (for the agent line) ``agentId``. ``msg`` is absent when
    a message has neither text nor blocks (a file, a close without comment) and is the JSON of
    ``blocks`` when only blocks are present.

    A navigation message (the visitor moved to another page; sent only when the
    ``Livechat_Visitor_navigation_as_a_message`` and
    ``Send_visitor_navigation_history_livechat_webhook_request`` settings are both on) is written
    by the ``rocket.cat`` user, so Rocket.Chat gives it ``agentId: "rocket.cat"``; its ``msg`` is
    ``"<title> - <url>"`` and ``navigation`` holds the page. ``is_navigation`` tells it apart, and
    it counts neither as the agent's nor as the visitor's.
    """

    u: MessageAuthor | None = None
    id: str | None = Field(default=None, alias="_id")
    username: str
    msg: str | None = None
    blocks: list[dict[str, Any]] | None = None
    ts: RocketChatDate
    rid: str | None = None
    edited_at: RocketChatDate | None = Field(default=None, alias="editedAt")
    agent_id: str | None = Field(default=None, alias="agentId")
    navigation: Navigation | None = None
    closing_message: StrictBool | None = Field(default=None, alias="closingMessage")
    file: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] | None = None
    file_upload: FileUpload | None = Field(default=None, alias="fileUpload")
    updated_at: RocketChatDate | None = Field(default=None, alias="_updatedAt")

    @property
    def is_navigation(self) -> bool:
        """Whether this is a navigation-history message (it carries ``navigation``)."""
        return self.navigation is not None

    @property
    def is_from_agent(self) -> bool:
        """Whether an agent (or bot) wrote it: Rocket.Chat sets ``agentId`` for every author but
        the visitor. Navigation messages (``agentId: "rocket.cat"``) do not count."""
        return self.agent_id is not None and self.navigation is None

    @property
    def is_from_visitor(self) -> bool:
        """Whether the visitor wrote it (no ``agentId``; navigation messages do not count)."""
        return self.agent_id is None and self.navigation is None

    @property
    def is_closing(self) -> bool:
        """Whether this is the closing message (the close comment)."""
        return self.closing_message is True

    @property
    def author_name(self) -> str:
        """The author's display name, falling back to the username."""
        if self.u is not None and self.u.name:
            return self.u.name
        return self.username

    @property
    def text(self) -> str:
        """A readable one-line text: the message, or what stands for it (blocks, file, page)."""
        if self.blocks and (self.msg is None or self.msg == _blocks_json(self.blocks)):
            return _blocks_text(self.blocks) or "[interactive message]"
        # Before `msg`: Rocket.Chat writes "<title> - <url>" there, which reads less clearly.
        if self.navigation is not None and self.navigation.page is not None:
            page = self.navigation.page
            href = page.location.href if page.location is not None else None
            return f"[visited {page.title or href or 'a page'}{f' ({href})' if href else ''}]"
        if self.msg:
            return self.msg
        if self.file is not None:
            return f"[file: {self.file.get('name') or 'attachment'}]"
        if self.is_closing:
            return "[closed the chat]"
        return ""


def _blocks_json(blocks: list[dict[str, Any]]) -> str:
    # Rocket.Chat falls back to JSON.stringify(blocks), which writes no spaces.
    return json.dumps(blocks, separators=(",", ":"), ensure_ascii=False)


def _blocks_text(blocks: list[dict[str, Any]]) -> str:
    """The human text inside UIKit blocks (section, context and header texts)."""
    pieces: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            text = node.get("text")
            if isinstance(text, str):
                pieces.append(text)
            for key, value in node.items():
                if key != "text" or not isinstance(value, str):
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(blocks)
    return " ".join(piece.strip() for piece in pieces if piece.strip())
