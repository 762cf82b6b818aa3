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
Chat Taken                 the room, the agent, and when it was assigned (``servedBy.ts``)
Chat Forwarded             the room, where it went (agent or department), and when its agent
                           was assigned (``servedBy.ts``; without one, how many messages)
Chat Close                 the room and its ``closedAt``
Visitor / Agent Message    the message ``_id`` and its ``editedAt`` (an edit is a new event)
Lead Capture               the room and the emails and phones it captured
Chat Edit, Offline         none: only the body's hash (nothing in them tells two apart)
=========================  ===============================================================

Where a payload carries no time of its own (Chat Queued, a Chat Forwarded of a room nobody
serves), the number of messages in its history stands for "when": Rocket.Chat builds those with
the room's history at that moment. Two such events merge only if the same thing happened twice
with no message in between, which a CRM cannot tell apart either.

An identity that ends in ``@`` and a time names the moment as Rocket.Chat recorded it; one
rebuilt from Rocket.Chat's records may know that moment only from a system message written a few
milliseconds later (an agent's assignment before the latest): :func:`identities_match` takes
the two for one event.

>>> from omnihook.contracts import parse_event, samples
>>> event_identity(parse_event(samples.sample("chat-close")))
'close:hX4Lq2rNwPZ8Kc7Ry:2025-03-14T09:36:00.000Z'
"""

from __future__ import annotations

from datetime import datetime

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

__all__ = ["MOMENT_TOLERANCE", "event_identity", "identities_match", "message_identity"]

MOMENT_TOLERANCE = 5.0
"""Seconds two identities' moments may differ by and still name one event (see
:func:`identities_match`): an assignment and the system messages written after it."""


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
        served = event.served_by
        if event.to_department:
            where = f"department:{event.old_department_id}>{event.department_id or '-'}"
        else:
            where = f"agent:{served.id if served else '-'}"
        if served is not None and served.ts is not None:
            return f"forwarded:{event.id}:{where}@{format_date(served.ts)}"
        return f"forwarded:{event.id}:{where}:{len(event.messages)}"
    if isinstance(event, LivechatSessionTaken):
        served = event.served_by
        when = format_date(served.ts) if served is not None and served.ts is not None else "-"
        return f"taken:{event.id}:{served.id if served else '-'}@{when}"
    if isinstance(event, LeadCapture):
        found = sorted({*event.visitor.emails, *event.visitor.phones})
        return f"lead:{event.id}:{','.join(found)}"
    return None


def message_identity(room_id: str, message_id: str, when: str) -> str:
    """A message event's identity: its room, its ``_id``, and ``when`` (its ``editedAt`` if
    edited, else its ``ts``, as Rocket.Chat writes dates)."""
    return f"message:{room_id}:{message_id}:{when}"


def identities_match(one: str, other: str, tolerance: float = MOMENT_TOLERANCE) -> bool:
    """Whether two identities name one event: equal, or equal but for the moment they end with
    (after ``@`` or ``:``), the two at most ``tolerance`` seconds apart.

    >>> identities_match("taken:R1:A1@2025-03-14T09:00:00.020Z", "taken:R1:A1@2025-03-14T09:00:00.021Z")
    True
    >>> identities_match("taken:R1:A1@2025-03-14T09:00:00.020Z", "taken:R1:A2@2025-03-14T09:00:00.020Z")
    False
    """
    if one == other:
        return True
    split, other_split = _moment(one), _moment(other)
    if split is None or other_split is None or split[0] != other_split[0]:
        return False
    return abs(split[1] - other_split[1]) <= tolerance


def _moment(identity: str) -> tuple[str, float] | None:
    """``(what, when)`` of an identity ending in a date as :func:`format_date` writes it."""
    head, date = identity[:-_DATE_LENGTH], identity[-_DATE_LENGTH:]
    if not head or head[-1] not in "@:" or not date.endswith("Z"):
        return None
    try:
        return head, datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_DATE_LENGTH = len("2025-01-01T10:00:00.000Z")
