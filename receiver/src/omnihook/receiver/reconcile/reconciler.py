"""Compare what Rocket.Chat knows with what the store received; rebuild what its webhook dropped.

>>> reconciler = Reconciler(api, store, switches)                   # doctest: +SKIP
>>> report = await reconciler.find(since, until)                     # the gaps, nothing changed
>>> report = await reconciler.apply(report)                          # the rebuilt ones accepted

The rooms looked at: those created in the window, those closed in or after it, and those open
now (served, queued or on hold). Of each, the events Rocket.Chat sent inside the window
(:mod:`.expected`) are compared by identity with the events the store holds; each one missing is
a gap. Applying accepts each rebuilt event through the same path as a webhook delivery, marked
``source = "reconcile"``, so the worker hands it to handlers and CRM adapters as any other; a
real delivery arriving later is then answered as its duplicate, and so is a second ``apply``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from omnihook.contracts import identities_match, parse_event
from omnihook.contracts.building import SETTING_IDS, BuildSettings, RoomRecords
from omnihook.store import Store, StoreError

from ..delivery import stored_delivery
from ..rest import RocketChatApi, RocketChatError, RocketChatRefused, RocketChatUnavailable
from .expected import ExpectedEvent, Unrebuildable, expected_events, queued_prefix
from .switches import WebhookSwitches

__all__ = ["Gap", "ReconcileReport", "Reconciler", "read_build_settings"]

logger = logging.getLogger("omnihook.reconcile")

_MARGIN = 86400.0
"""How far the room listings' date filters are widened on each side (time zones)."""


@dataclass(frozen=True)
class Gap:
    """An event Rocket.Chat sent that the store never received."""

    room_id: str
    type: str
    what: str
    at: str
    """When Rocket.Chat sent it (ISO)."""
    event: ExpectedEvent | None
    """The rebuilt event, or ``None`` when it cannot be rebuilt (``why`` says why)."""
    why: str | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """One comparison: the window, what was looked at, what is missing, what was rebuilt."""

    since: float
    until: float
    rooms: int = 0
    expected: int = 0
    gaps: tuple[Gap, ...] = ()
    skipped_rooms: tuple[tuple[str, str], ...] = ()
    """Rooms left out, with the reason (deleted meanwhile, visitor removed)."""
    applied: tuple[Gap, ...] = ()
    already: int = 0
    """Rebuilt events the store had meanwhile (a late real delivery): not stored twice."""
    notes: tuple[str, ...] = ()
    """What this Rocket.Chat could not tell, said once per run (a filter it lacks)."""

    @property
    def rebuildable(self) -> list[Gap]:
        return [gap for gap in self.gaps if gap.event is not None]


@dataclass
class _Compared:
    expected: int = 0
    gaps: list[Gap] = field(default_factory=list)
    skipped: tuple[str, str] | None = None


@dataclass
class _Seen:
    rooms: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class Reconciler:
    """Finds and fills the gaps between Rocket.Chat and ``store`` (see the module's docstring)."""

    def __init__(
        self,
        api: RocketChatApi,
        store: Store,
        switches: WebhookSwitches,
        *,
        settings: BuildSettings | None = None,
        clock: Callable[[], float] = time.time,
        concurrency: int = 4,
    ) -> None:
        self.api = api
        self.concurrency = max(1, concurrency)
        """Rooms read at once (each a few REST calls)."""
        self.store = store
        self.switches = switches
        self.settings = settings or BuildSettings(navigation_in_history=switches.navigation)
        self.clock = clock
        self._users: dict[str, Mapping[str, Any] | None] = {}

    async def find(self, since: float, until: float) -> ReconcileReport:
        """The gaps of events sent between ``since`` and ``until`` (Unix seconds). Reads only.

        Raises :class:`~omnihook.receiver.rest.RocketChatRefused` when Rocket.Chat refuses the
        bot (credentials, a permission: nothing is guessed), ``RocketChatUnavailable`` when it
        cannot list the rooms, and ``StoreError`` when the store cannot read. A room that
        cannot be read or rebuilt is left out with the reason (``skipped_rooms``); the next
        round tries it again.
        """
        start, end = _iso(since), _iso(until)
        seen = await self._rooms(since, until)
        await self.store.connect()
        slots = asyncio.Semaphore(self.concurrency)

        async def compare(room_id: str, room: Mapping[str, Any]) -> _Compared:
            # One room at a time per slot: only its gaps are kept, not every rebuilt payload.
            async with slots:
                try:
                    records = await self._records(room)
                    found, cannot = await asyncio.to_thread(
                        expected_events, records, self.switches, settings=self.settings,
                        in_queue=room_id in seen.queued,
                    )  # fmt: skip
                except _Skip as exc:
                    return _Compared(skipped=(room_id, str(exc)))
                except RocketChatUnavailable as exc:  # this room's reads failed; try it next time
                    return _Compared(skipped=(room_id, f"Rocket.Chat failed reading it: {exc}"))
                except (RocketChatRefused, StoreError):
                    raise  # the bot or the store, not the room: every room would fail
                except Exception as exc:  # a record this code cannot make sense of
                    logger.exception("reconcile: room %s could not be rebuilt", room_id)
                    why = f"its records could not be rebuilt ({type(exc).__name__}: {exc})"
                    return _Compared(skipped=(room_id, why))
                found = [event for event in found if start <= event.at <= end]
                stored = (await self.store.events.identities([room_id])).get(room_id, set())
                gaps = [Gap(e.room_id, e.type, e.what, e.at, e) for e in found
                        if not _received(e, stored)]  # fmt: skip
                gaps += [Gap(item.room_id, item.type, item.what, item.at, None, item.why)
                         for item in cannot
                         if start <= item.at <= end and not _seen(item, stored)]  # fmt: skip
                return _Compared(expected=len(found), gaps=gaps)

        compared = await asyncio.gather(*(compare(i, r) for i, r in seen.rooms.items()))
        gaps = sorted((gap for c in compared for gap in c.gaps), key=lambda g: (g.at, g.room_id))
        skipped = tuple(c.skipped for c in compared if c.skipped is not None)
        expected = sum(c.expected for c in compared)
        return ReconcileReport(since, until, len(seen.rooms), expected, tuple(gaps), skipped,
                               notes=tuple(seen.notes))  # fmt: skip

    async def apply(self, report: ReconcileReport) -> ReconcileReport:
        """Accept every rebuildable gap through the store's delivery path, oldest first."""
        applied: list[Gap] = []
        already = 0
        for gap in report.rebuildable:
            assert gap.event is not None
            body = gap.event.body
            accepted = await self.store.events.accept(
                stored_delivery(
                    parse_event(body), body, source="reconcile", received_at=self.clock()
                )
            )
            if accepted.duplicate:
                already += 1
            else:
                applied.append(gap)
        return replace(report, applied=tuple(applied), already=already)

    # -- reading Rocket.Chat -----------------------------------------------------------------------

    async def _rooms(self, since: float, until: float) -> _Seen:
        """The rooms that may have events in the window: created in it, closed in or after it,
        open now. The date filters are widened by a day: one 6.x version read them in the bot
        user's time zone; the events themselves are then kept to the exact window."""
        seen = _Seen()
        start, end = _iso(since - _MARGIN), _iso(until + _MARGIN)
        listings = [
            await self.api.livechat_rooms(created={"start": start, "end": end}),
            await self.api.livechat_rooms(closed={"start": start}),
            await self.api.livechat_rooms(state="open"),
            await self.api.livechat_rooms(state="onhold"),
        ]
        try:
            queued = await self.api.livechat_rooms(state="queued")
        except RocketChatRefused as exc:
            if exc.status != 400:
                raise
            # Before 7.0 livechat/rooms has no ``queued`` filter (invalid-params).
            queued = []
            seen.notes.append(
                "this Rocket.Chat cannot list the rooms waiting in the queue (no queued filter "
                "before 7.0): a room created before the window and still queued is not looked at"
            )
        for room in [*(room for listing in listings for room in listing), *queued]:
            if isinstance(room.get("_id"), str):
                seen.rooms.setdefault(room["_id"], room)
        seen.queued = {str(room["_id"]) for room in queued if isinstance(room.get("_id"), str)}
        return seen

    async def _records(self, room: Mapping[str, Any]) -> RoomRecords:
        room_id = str(room["_id"])
        visitor_ref = room.get("v") or {}
        try:
            messages = _merged(
                await self.api.room_messages(room_id), await self.api.system_messages(room_id)
            )
            if self.settings.navigation_in_history:
                messages = _merged(messages, await self.api.pages_visited(room_id))
            visitor = await self.api.visitor(str(visitor_ref.get("_id")))
        except RocketChatRefused as exc:
            if "invalid-room" in str(exc) or "not-allowed" in str(exc):
                raise _Skip("deleted or no longer readable since it was listed") from exc
            raise
        if visitor is None:
            raise _Skip("its visitor was removed: Rocket.Chat sends no webhook for such a room")
        users = [user for user in [await self._user(i) for i in _user_ids(room, messages)] if user]
        return RoomRecords(room, visitor, messages, users)

    async def _user(self, user_id: str) -> Mapping[str, Any] | None:
        if user_id not in self._users:
            self._users[user_id] = await self.api.user(user_id)
        return self._users[user_id]


class _Skip(RocketChatError):
    """This room cannot be compared (the reason is the message)."""


async def read_build_settings(api: RocketChatApi, switches: WebhookSwitches) -> BuildSettings:
    """The settings that shape payloads, from Rocket.Chat where the bot may read them (the
    navigation switches come with the webhook switches)."""
    values: dict[str, Any] = {}
    for setting_id in SETTING_IDS:
        try:
            values[setting_id] = await api.setting(setting_id)
        except RocketChatRefused:
            continue
    settings = BuildSettings.from_settings(values)
    return replace(settings, navigation_in_history=switches.navigation)


def _received(event: ExpectedEvent, stored: set[str]) -> bool:
    if event.identity in stored:
        return True
    if event.type == "LivechatSessionQueued":  # its history length cannot be known for sure
        prefix = queued_prefix(event.room_id)
        return any(identity.startswith(prefix) for identity in stored)
    if "@" in event.identity:  # an assignment before the latest: known to a few milliseconds
        return any(identities_match(event.identity, identity) for identity in stored)
    return False


def _seen(item: Unrebuildable, stored: set[str]) -> bool:
    """Whether the store received an event that cannot be rebuilt (when its identity is known)."""
    if item.identity is None:
        return False
    return any(identities_match(item.identity, identity, item.within) for identity in stored)


def _merged(*sources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Messages from several reads, each once (a hidden edit copy is its own record)."""
    found: dict[tuple[Any, bool], Mapping[str, Any]] = {}
    for source in sources:
        for message in source:
            key = (message.get("_id"), message.get("_hidden") is True)
            found.setdefault(key, message)
    return list(found.values())


def _user_ids(room: Mapping[str, Any], messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """Everyone who served the room: its servedBy, each agent assigned (``command`` or ``uj``),
    each transfer's target."""
    ids: list[str] = []
    served = room.get("servedBy")
    if isinstance(served, Mapping) and served.get("_id"):
        ids.append(str(served["_id"]))
    visitor_id = (room.get("v") or {}).get("_id")
    for message in messages:
        author = message.get("u") or {}
        if (message.get("t") in ("uj", "command") and author.get("_id")
                and author.get("_id") != visitor_id):  # fmt: skip
            ids.append(str(author["_id"]))
        target = (message.get("transferData") or {}).get("transferredTo") or {}
        if target.get("_id"):
            ids.append(str(target["_id"]))
    return list(dict.fromkeys(ids))


def _iso(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
