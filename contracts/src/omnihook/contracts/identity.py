"""What makes two deliveries the same event, whatever their bytes.

Rocket.Chat sends no event id. A retry re-sends the same bytes, so the receiver's first dedup key
is the body's hash; but an event rebuilt from Rocket.Chat's REST API (``omnihook reconcile``) and
a late real delivery of the same thing differ in their bytes (``crmData``, tags and custom fields
as they are now, the order of keys). :func:`event_identity` names the event itself, from what the
payload says about it, so that whichever of the two arrives first is handled and the other is
answered like a duplicate:

=========================  ===============================================================
event                      identity
=========================  ===============================================================
Chat Start                 the room (a room starts once)
Chat Queued                the room, its department, and how many messages it had then
Chat Taken                 the room, the agent, and how many messages it had then
Chat Forwarded             the room, where it went (agent or department), how many messages
Chat Close                 the room and its ``closedAt``
Visitor / Agent Message    the message ``_id`` and its ``editedAt`` (an edit is a new event)
Lead Capture               the room and the emails and phones it captured
Chat Edit, Offline         none: only the body's hash (nothing in them tells two apart)
=========================  ===============================================================

The message count stands for "when" where the payload carries no time of its own: Rocket.Chat
builds Queued, Taken and Forwarded with the room's history at that moment. Two such events merge
only if the same thing happened twice with no message in between (the same agent taking the room
twice in a row, say), which a CRM cannot tell apart either.

>>> from omnihook.contracts import parse_event, samples
>>> event_identity(parse_event(samples.sample("chat-close")))
'close:hX4Lq2rNwPZ8Kc7Ry:2025-03-14T09:36:00.000Z'
"""

from __future__ import annotations

from .dates import format_date
from .events import (
    AnyEvent,
    LeadCapture,
    LivechatSession,
    LivechatSessionForwarded,
    LivechatSessionQueued,
    LivechatSessionStart,
    LivechatSessionTaken,
    MessageEvent,
)

__all__ = ["event_identity", "message_identity"]


def event_identity(event: AnyEvent) -> str | None:
    """The event's identity (see the module's table), or ``None`` when only its bytes can say."""
    if event.is_test:
        return None
    if isinstance(event, MessageEvent):
        message = event.message
        if message is None or not message.id:
            return None
        return message_identity(event.id, message.id, format_date(message.edited_at or message.ts))
    if isinstance(event, LivechatSessionStart):
        return f"start:{event.id}"
    if isinstance(event, LivechatSession):
        closed = format_date(event.closed_at) if event.closed_at else "-"
        return f"close:{event.id}:{closed}"
    if isinstance(event, LivechatSessionQueued):
        return f"queued:{event.id}:{event.department_id or '-'}:{len(event.messages)}"
    if isinstance(event, LivechatSessionForwarded):
        if event.to_department:
            where = f"department:{event.old_department_id}>{event.department_id or '-'}"
        else:
            where = f"agent:{event.served_by.id if event.served_by else '-'}"
        return f"forwarded:{event.id}:{where}:{len(event.messages)}"
    if isinstance(event, LivechatSessionTaken):
        agent = event.served_by.id if event.served_by else "-"
        return f"taken:{event.id}:{agent}:{len(event.messages)}"
    if isinstance(event, LeadCapture):
        found = sorted({*event.visitor.emails, *event.visitor.phones})
        return f"lead:{event.id}:{','.join(found)}"
    return None


def message_identity(room_id: str, message_id: str, when: str) -> str:
    """A message event's identity: its room, its ``_id``, and ``when`` (its ``editedAt`` if
    edited, else its ``ts``, as Rocket.Chat writes dates)."""
    return f"message:{room_id}:{message_id}:{when}"
