"""What the docs' code blocks take as given: the reader's own code and data.

A ```python block of the docs that uses one of these names without defining it gets it from here
(``test_docs_code.py`` adds the import), so that a snippet can say ``crm.upsert(...)`` or
``sender.send(event)`` the way a reader's code would, and still be type-checked and run.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnihook.contracts import ChatMessage, LivechatSession, parse_event, samples
from omnihook.receiver import Router

__all__ = ["crm", "event", "router", "save_transcript", "url"]


class _Crm:
    """A stand-in for the reader's CRM client: contacts by email, notes by contact."""

    def __init__(self) -> None:
        self.contacts: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}

    async def upsert(self, email: str | None, name: str | None) -> str:
        return self.contacts.setdefault(email or name or "", f"c-{len(self.contacts) + 1}")

    async def add_note(self, contact_id: str, text: str) -> None:
        self.notes.setdefault(contact_id, []).append(text)


crm = _Crm()
"""The reader's CRM client."""

router = Router()
"""The reader's router, with their handlers."""

_close = parse_event(samples.sample("chat-close"))
assert isinstance(_close, LivechatSession)
event: LivechatSession = _close
"""An event at hand (a Chat Close)."""

url = "http://127.0.0.1:8000/rocketchat"
"""A receiver's webhook URL."""


def save_transcript(room_id: str, messages: Sequence[ChatMessage]) -> None:
    """The reader's own function, in a synchronous framework."""
