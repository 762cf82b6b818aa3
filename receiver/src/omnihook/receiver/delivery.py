"""What a delivery becomes in the store, however it arrived: a webhook, or an event rebuilt from
Rocket.Chat's REST API by reconcile. Both take this one path, so handlers and CRM adapters treat
them alike, and dedup sees them alike.

>>> record = stored_delivery(parse_event(body), body)                    # doctest: +SKIP
>>> accepted = await store.events.accept(record)                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from omnihook.contracts import AnyEvent, RoomEvent, event_identity
from omnihook.store import EventSource, NewEvent

__all__ = ["previous_crm_data", "stored_delivery"]


def stored_delivery(
    event: AnyEvent,
    body: bytes,
    *,
    source: EventSource = "webhook",
    received_at: float | None = None,
) -> NewEvent:
    """The store's record of a delivery: dedup key (the body's SHA-256: a retry re-sends the
    same bytes), identity (the same event in other bytes: :func:`~omnihook.contracts.event_identity`),
    room, type, the crmData object it carried (the answer starts from it) and its source."""
    previous = previous_crm_data(event)
    return NewEvent(
        dedup_key=hashlib.sha256(body).hexdigest(),
        room_id=event.room_id,
        type=event.type,
        body=body,
        received_at=time.time() if received_at is None else received_at,
        previous_crm_data=previous if isinstance(previous, dict) else None,
        identity=event_identity(event),
        source=source,
    )


def previous_crm_data(event: AnyEvent) -> Any:
    """The crmData a room event carried, decoded (``None`` for other events)."""
    return event.parsed_crm_data() if isinstance(event, RoomEvent) else None
