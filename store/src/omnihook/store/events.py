"""The receiver's side of the store: accepted events, their handling, rooms and dead letters.

An event's life: ``accept`` (committed before Rocket.Chat gets its 200) → ``pending`` → a worker
``claim``s it (``processing``, under a lease) → ``finish``: ``done``, ``failed`` (to be retried at
``next_attempt_at``) or ``dead``. Only the oldest unfinished event of a room can be claimed, so a
room's events are handled one at a time, in arrival order, whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .batching import Batcher, each_item_once
from .database import Database, Tx, ValueKind
from .database import placeholders as _marks
from .errors import StoreFailed, one_item_may_be_at_fault
from .keys import bounded_key, storable_text
from .leased import Backlog, LeasedTable
from .redaction import redact_error
from .watching import StoreWatch, channel

__all__ = [
    "EVENT_SOURCES",
    "EVENT_STATUSES",
    "Accepted",
    "AttemptRecord",
    "ClaimedEvent",
    "EventQuery",
    "EventSource",
    "EventStatus",
    "EventStore",
    "Finish",
    "NewEvent",
    "ReplayResult",
    "RoomState",
    "RoomSummary",
    "StoredEvent",
]

EventStatus = Literal["pending", "processing", "failed", "dead", "done"]
EventSource = Literal["webhook", "reconcile"]
"""Where an event came from: Rocket.Chat posted it, or reconcile rebuilt it from the REST API."""
EVENT_SOURCES: tuple[EventSource, ...] = ("webhook", "reconcile")
EVENT_STATUSES: tuple[EventStatus, ...] = ("pending", "processing", "failed", "dead", "done")

_ACTIVE = "('pending', 'processing', 'failed')"
_OK_ANSWER = '{"ok":true}'


@dataclass(frozen=True)
class NewEvent:
    """A delivery to accept."""

    dedup_key: str
    room_id: str | None
    type: str
    body: bytes
    received_at: float
    previous_crm_data: dict[str, Any] | None = None
    """The crmData object Rocket.Chat sent along (the answer starts from it)."""
    identity: str | None = None
    """What the event is, beside its bytes (:func:`omnihook.contracts.event_identity`): a
    delivery with the identity of a stored event is a duplicate of it."""
    source: EventSource = "webhook"
    trace_context: str | None = None
    """The W3C ``traceparent`` of the trace that stored it (``None``: tracing off); the worker
    handling it continues that trace."""


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting a delivery: its event id, and the body to answer with."""

    event_id: int
    answer: str
    duplicate: bool


@dataclass(frozen=True)
class RoomState:
    """What handling has learnt about a room so far."""

    room_id: str
    crm_data: dict[str, Any] = field(default_factory=dict)
    stage: int | None = None
    newest_message_at: float | None = None


@dataclass(frozen=True)
class ClaimedEvent:
    """An event a worker holds under a lease, with what it needs to handle it."""

    id: int
    dedup_key: str
    room_id: str | None
    type: str
    body: bytes
    received_at: float
    attempts: int
    """Attempts finished before this one."""
    handlers_done: frozenset[str]
    room: RoomState | None
    source: EventSource = "webhook"
    deferrals: int = 0
    """Of ``attempts``, those that only waited (a rate limit, an open circuit): they do not
    count against a handling policy's attempts."""
    trace_context: str | None = None
    """The W3C ``traceparent`` stored with the event (see :attr:`NewEvent.trace_context`)."""


@dataclass(frozen=True)
class Finish:
    """How one handling attempt ended, and what it teaches about the room."""

    status: Literal["done", "failed", "dead"]
    started_at: float
    finished_at: float
    handlers_done: Sequence[str] = ()
    error: str | None = None
    next_attempt_at: float | None = None
    crm_data: dict[str, Any] = field(default_factory=dict)
    stage: int | None = None
    newest_message_at: float | None = None
    stale: bool = False
    deferred: bool = False
    """The attempt only waited (see :attr:`ClaimedEvent.deferrals`)."""


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event as the store holds it."""

    id: int
    dedup_key: str
    room_id: str | None
    type: str
    received_at: float
    status: EventStatus
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    answer: str
    handlers_done: tuple[str, ...]
    stale: bool | None
    last_error: str | None
    finished_at: float | None
    body: bytes | None = None
    identity: str | None = None
    source: EventSource = "webhook"


@dataclass(frozen=True)
class EventQuery:
    """What :meth:`EventStore.search` looks for; every filter optional, newest first.

    ``since``/``until`` bound the time of receipt; ``text`` is searched in the body (as bytes:
    it scans the rows the other filters leave, so narrow it with them); ``before_id`` pages on:
    the events older than the last one shown.
    """

    status: EventStatus | None = None
    type: str | None = None
    room_id: str | None = None
    source: EventSource | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    before_id: int | None = None
    after_id: int | None = None
    """The events newer than this id, oldest first (a live view catching up)."""
    limit: int = 50
    text_window: int = 100_000
    """With ``text`` and no ``since``: how many of the newest events (below ``before_id``) it
    reads at most, so that a search for something rare stays quick; set ``since`` to go further."""


@dataclass(frozen=True)
class RoomSummary:
    """A room as the store knows it: when its handling last changed, its newest event."""

    room_id: str
    updated_at: float
    crm_data: dict[str, Any]
    stage: int | None
    newest: StoredEvent | None


@dataclass(frozen=True)
class AttemptRecord:
    """One handling attempt of an event."""

    number: int
    worker: str
    started_at: float
    finished_at: float
    outcome: str
    error: str | None


@dataclass(frozen=True)
class ReplayResult:
    """What ``replay`` did with each id asked for."""

    replayed: list[int]
    skipped: dict[int, str]
    """Ids not replayed, with the reason."""


_COLUMNS = (
    "id, dedup_key, room_id, type, received_at, status, attempts, next_attempt_at, lease_owner, "
    "answer, handlers_done, stale, last_error, finished_at, identity, source"
)


class EventStore:
    """Accepted events on a :class:`Database`. All times are Unix seconds given by the caller."""

    def __init__(self, database: Database, max_batch: int = 256) -> None:
        self.database = database
        self._table = LeasedTable(database, "events", "processing", EVENT_STATUSES)
        self.channel = channel(database.config, "events")
        """Where accepting announces new events (:mod:`omnihook.store.watching`)."""
        self._accepts: Batcher[NewEvent, Accepted] = Batcher(
            self._accept_batch,
            max_batch,
            database.write_concurrency,
            isolate=one_item_may_be_at_fault,
        )
        # Outcomes share commits too: a worker finishing one event per transaction made the
        # commit (an fsync on SQLite) the limit of handling.
        self._finishes: Batcher[tuple[ClaimedEvent, str, Finish], bool] = Batcher(
            self._finish_batch,
            max_batch,
            database.write_concurrency,
            isolate=one_item_may_be_at_fault,
        )

    async def close(self) -> None:
        await self._accepts.close()
        await self._finishes.close()

    # -- accepting ---------------------------------------------------------------------------

    async def accept(self, event: NewEvent) -> Accepted:
        """Store a delivery durably, or find the identical one stored before.

        Returns once the write is committed; concurrent calls share commits. The answer starts
        from the crmData Rocket.Chat sent, updated with what handling stored for the room; a
        duplicate gets the answer its first delivery got. A room id too long for an index is
        kept shortened (:func:`~omnihook.store.keys.bounded_key`).

        Raises :class:`StoreUnavailable` when the store cannot write now, and
        :class:`StoreRejected` when the database refuses this delivery's data (the other
        deliveries committed with it are not affected).
        """
        # As the database will hold them (NUL and lone surrogates replaced, long keys bounded):
        # the rows found are matched to the batch's events by these values.
        room_id, identity = _as_stored(event.room_id), _as_stored(event.identity)
        if room_id != event.room_id or identity != event.identity:
            event = dataclasses.replace(event, room_id=room_id, identity=identity)
        return await self._accepts.submit(event)

    async def _accept_batch(self, batch: list[NewEvent]) -> list[Accepted]:
        return await self.database.run(lambda tx: _accept_in(tx, batch, self.channel))

    def watch(self, on_new: Callable[[], None]) -> StoreWatch:
        """A watch (``async with``) that calls ``on_new`` in the event loop soon after another
        process stores events, so that a worker need not wait for its next poll."""
        return StoreWatch(self.database, self.channel, on_new)

    # -- handling ----------------------------------------------------------------------------

    async def claim(self, worker: str, limit: int, lease: float, now: float) -> list[ClaimedEvent]:
        """Take up to ``limit`` due events, each the oldest unfinished one of its room."""
        if limit <= 0:
            return []
        return await self.database.run(lambda tx: _claim_in(tx, worker, limit, now + lease, now))

    async def renew(self, worker: str, ids: Iterable[int], until: float) -> None:
        """Extend the leases ``worker`` holds on ``ids``."""
        await self._table.renew(worker, ids, until)

    async def finish(self, event: ClaimedEvent, worker: str, result: Finish) -> bool:
        """Record an attempt's outcome; ``False`` if ``worker`` lost the lease meanwhile (the
        outcome is then dropped: another worker has the event). Concurrent calls share commits.

        Where the receiver's errors are recorded: the error text is masked here
        (:func:`~omnihook.store.redaction.redact`; a CRM may echo our headers back), before the
        transaction, which holds the write lock."""
        result = dataclasses.replace(result, error=redact_error(result.error))
        return await self._finishes.submit((event, worker, result))

    async def _finish_batch(self, batch: list[tuple[ClaimedEvent, str, Finish]]) -> list[bool]:
        return await self.database.run(
            lambda tx: each_item_once(
                batch, lambda outcome: outcome[0].id, lambda part: _finish_all(tx, part)
            )
        )

    async def release(self, worker: str, ids: Iterable[int]) -> None:
        """Give back claimed events unhandled (shutdown): they become claimable at once."""
        await self._table.release(worker, ids)

    # -- looking and replaying ---------------------------------------------------------------

    async def get(self, event_id: int) -> StoredEvent | None:
        """One event with its body, or ``None``."""

        def work(tx: Tx) -> StoredEvent | None:
            row = tx.execute(
                f"SELECT {_COLUMNS}, body FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            return _stored(row) if row else None

        return await self.database.run(work)

    async def attempts(self, event_id: int) -> list[AttemptRecord]:
        """Every handling attempt of an event, oldest first."""

        def work(tx: Tx) -> list[AttemptRecord]:
            rows = tx.execute(
                "SELECT number, worker, started_at, finished_at, outcome, error FROM attempts "
                "WHERE event_id = ? ORDER BY number",
                (event_id,),
            ).fetchall()
            # Masked on the way out too: rows written before redaction existed.
            return [
                AttemptRecord(number, worker, started, finished, outcome, redact_error(error))
                for number, worker, started, finished, outcome, error in rows
            ]

        return await self.database.run(work)

    async def find(
        self,
        status: EventStatus | None = None,
        room_id: str | None = None,
        limit: int = 50,
        source: EventSource | None = None,
    ) -> list[StoredEvent]:
        """The newest events first, optionally of one status, one room and/or one source."""
        where, params = LeasedTable.filters(status, room_id)
        if source is not None:
            where = f"{where} AND source = ?" if where else "WHERE source = ?"
            params.append(source)

        def work(tx: Tx) -> list[StoredEvent]:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?", (*params, limit)
            ).fetchall()
            return [_stored(row) for row in rows]

        return await self.database.run(work)

    async def search(self, query: EventQuery) -> list[StoredEvent]:
        """Events matching ``query``, newest first (oldest first with ``after_id``), with their
        bodies. Each filter reads an index
        (status, type, room, time as an id range); only ``text`` scans what the others leave."""

        def work(tx: Tx) -> list[StoredEvent]:
            conditions, params = _query_conditions(tx, query)
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            order = "ASC" if query.after_id is not None else "DESC"
            rows = tx.execute(
                f"SELECT {_COLUMNS}, body FROM events {where} ORDER BY id {order} LIMIT ?",
                (*params, max(1, min(query.limit, 500))),
            ).fetchall()
            return [_stored(row) for row in rows]

        return await self.database.run(work)

    async def rooms(self, limit: int = 50, before: float | None = None) -> list[RoomSummary]:
        """Rooms whose handling changed most recently first (``before``: page on), each with its
        newest event (body included)."""

        def work(tx: Tx) -> list[RoomSummary]:
            rows = tx.execute(
                "SELECT room_id, updated_at, crm_data, stage FROM rooms"
                + (" WHERE updated_at < ?" if before is not None else "")
                + " ORDER BY updated_at DESC LIMIT ?",
                (*([before] if before is not None else []), max(1, min(limit, 500))),
            ).fetchall()
            found = []
            for room_id, updated_at, crm_data, stage in rows:
                newest = tx.execute(
                    f"SELECT {_COLUMNS}, body FROM events WHERE room_id = ? ORDER BY id DESC "
                    "LIMIT 1",
                    (room_id,),
                ).fetchone()
                found.append(RoomSummary(str(room_id), float(updated_at), json.loads(crm_data),
                                         stage, _stored(newest) if newest else None))  # fmt: skip
            return found

        return await self.database.run(work)

    async def received_per_hour(self, since: float, now: float) -> list[tuple[float, int]]:
        """Events received in each hour from ``since`` to ``now`` (hour start, count), oldest
        first; every hour present, empty ones as 0. Reads only the rows of that time."""

        def work(tx: Tx) -> list[tuple[float, int]]:
            first = _first_id_at(tx, since)
            start = since - since % 3600
            counts = [0] * (int((now - start) // 3600) + 1)
            if first is not None:
                rows = tx.execute(
                    "SELECT CAST((received_at - ?) / 3600 AS INTEGER), COUNT(*) FROM events "
                    "WHERE id >= ? GROUP BY 1",
                    (start, first),
                ).fetchall()
                for slot, count in rows:
                    if 0 <= int(slot) < len(counts):
                        counts[int(slot)] = int(count)
            return [(start + 3600 * i, n) for i, n in enumerate(counts)]

        return await self.database.run(work)

    async def first_received(self, source: EventSource = "webhook") -> float | None:
        """When the store received its first event of ``source`` (Unix seconds), ``None`` if
        none yet: from then on, reconciling in the background fills what went missing."""

        def work(tx: Tx) -> float | None:
            # By id, the order of arrival: the primary key answers without a scan.
            row = tx.execute(
                "SELECT received_at FROM events WHERE source = ? ORDER BY id LIMIT 1", (source,)
            ).fetchone()
            return float(row[0]) if row is not None else None

        return await self.database.run(work)

    async def identities(self, room_ids: Iterable[str]) -> dict[str, set[str]]:
        """The identities of the events stored for each room (rooms with none are left out)."""
        keys = {bounded_key(room_id): room_id for room_id in room_ids}
        if not keys:
            return {}

        def work(tx: Tx) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            chunk = list(keys)
            for start in range(0, len(chunk), 500):  # SQLite's limit on parameters
                part = chunk[start : start + 500]
                rows = tx.execute(
                    f"SELECT room_id, identity FROM events WHERE room_id IN ({_marks(part)}) "
                    "AND identity IS NOT NULL",
                    part,
                ).fetchall()
                for room_key, identity in rows:
                    found.setdefault(keys[str(room_key)], set()).add(str(identity))
            return found

        return await self.database.run(work)

    async def counts(self) -> dict[str, int]:
        """How many events are in each status."""
        return await self._table.counts()

    async def backlog(self) -> Backlog:
        """Events not done (pending, processing, failed, dead) and the oldest unfinished one's
        arrival: what metrics and ``omnihook status`` report, right across processes."""
        return await self._table.backlog("received_at")

    async def room(self, room_id: str) -> RoomState | None:
        """What handling has stored for a room."""
        key = bounded_key(room_id)
        return await self.database.run(lambda tx: _rooms_in(tx, [key]).get(key))

    async def replay(
        self, ids: Iterable[int] | None, now: float, *, all_handlers: bool = False
    ) -> ReplayResult:
        """Handle events again: ``ids``, or every dead event when ``ids`` is ``None``.

        Handlers that already succeeded for an event are skipped unless ``all_handlers``; an
        event that is done is replayed only with ``all_handlers``. The retry budget starts over.
        """
        id_list = None if ids is None else list(ids)
        return await self.database.run(lambda tx: _replay_in(tx, id_list, now, all_handlers))


# -- the units of work, run on a database thread -----------------------------------------------


def _accept_in(tx: Tx, batch: list[NewEvent], channel: str) -> list[Accepted]:
    batch = _with_stored_moments(tx, batch)
    # One stored event per distinct body and per identity; the first of the batch wins.
    first: dict[str, NewEvent] = {}
    key_of_identity: dict[str, str] = {}
    for event in batch:
        if event.dedup_key in first or (event.identity and event.identity in key_of_identity):
            continue
        first[event.dedup_key] = event
        if event.identity:
            key_of_identity[event.identity] = event.dedup_key
    unique = list(first.values())
    rooms = _rooms_in(tx, {e.room_id for e in unique if e.room_id is not None})
    answers = {e.dedup_key: _answer(e, rooms.get(e.room_id or "")) for e in unique}

    columns = (
        "(dedup_key, room_key, room_id, type, body, received_at, status, next_attempt_at, answer, "
        "identity, source, trace_context)"
    )
    values: list[Any] = []
    for e in unique:
        room_key = e.room_id if e.room_id is not None else f"#{e.dedup_key}"
        values += [e.dedup_key, room_key, e.room_id, e.type, e.body, e.received_at, "pending",
                   e.received_at, answers[e.dedup_key], e.identity, e.source,
                   e.trace_context]  # fmt: skip
    rows = tx.execute(
        f"INSERT INTO events {columns} VALUES "
        + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in unique)
        # Any unique key: the same bytes (dedup_key) or the same event (identity) stored before.
        + " ON CONFLICT DO NOTHING RETURNING dedup_key, id",
        values,
    ).fetchall()
    inserted = {str(key): int(event_id) for key, event_id in rows}
    if inserted:
        tx.notify(channel)  # workers in other processes hear of it at the commit
    stored_by_key: dict[str, tuple[int, str]] = {}
    stored_by_identity: dict[str, tuple[int, str]] = {}
    keys = [e.dedup_key for e in batch if e.dedup_key not in inserted]
    identities = [e.identity for e in batch if e.dedup_key not in inserted and e.identity]
    if keys:
        stored = tx.execute(
            "SELECT dedup_key, identity, id, answer FROM events "
            f"WHERE dedup_key IN ({_marks(keys)})"
            + (f" OR identity IN ({_marks(identities)})" if identities else ""),
            [*keys, *identities],
        ).fetchall()
        for key, identity, event_id, answer in stored:
            stored_by_key[str(key)] = (int(event_id), str(answer))
            if identity is not None:
                stored_by_identity[str(identity)] = (int(event_id), str(answer))

    results: list[Accepted] = []
    seen: set[str] = set()
    for event in batch:
        key = event.dedup_key
        twin = key_of_identity.get(event.identity or "")  # the batch's first with its identity
        if key in inserted:
            results.append(Accepted(inserted[key], answers[key], duplicate=key in seen))
        elif twin is not None and twin != key and twin in inserted:
            results.append(Accepted(inserted[twin], answers[twin], duplicate=True))
        else:
            found: tuple[int, str] | None = (
                stored_by_key.get(key)
                or (stored_by_key.get(twin) if twin else None)  # the twin's bytes were stored
                or stored_by_identity.get(event.identity or "")
            )
            if found is None:  # a unique key this code does not know of
                raise StoreFailed(f"event {key[:12]}… was neither stored nor found stored")
            results.append(Accepted(found[0], found[1], duplicate=True))
        seen.add(key)
    return results


_TIMED_TYPES = ("LivechatSessionForwarded", "LivechatSessionTaken")


def _with_stored_moments(tx: Tx, batch: list[NewEvent]) -> list[NewEvent]:
    """``batch`` with each identity that ends in a moment (``…@time``: a take, a forward) replaced
    by the stored identity it matches within :data:`~omnihook.contracts.MOMENT_TOLERANCE`.

    Rocket.Chat keeps the exact moment of a room's latest assignment only; reconcile rebuilds an
    earlier one from the system message written milliseconds after it. So a real delivery that
    arrives after its rebuild names the same event with another moment: taking the stored
    identity makes it the duplicate it is. One indexed read per batch that holds such events.
    """
    timed = [e for e in batch if e.type in _TIMED_TYPES and e.identity and "@" in e.identity
             and e.room_id is not None]  # fmt: skip
    if not timed:
        return batch
    from omnihook.contracts import identities_match

    rooms = sorted({str(e.room_id) for e in timed})
    stored = [str(identity) for (identity,) in tx.execute(
        f"SELECT identity FROM events WHERE room_id IN ({_marks(rooms)}) "
        f"AND type IN ({_marks(_TIMED_TYPES)}) AND identity IS NOT NULL",
        [*rooms, *_TIMED_TYPES],
    ).fetchall()]  # fmt: skip
    if not stored:
        return batch
    known = set(stored)
    replaced: dict[int, NewEvent] = {}
    for event in timed:
        identity = str(event.identity)
        if identity in known:
            continue
        match = next((other for other in stored if identities_match(identity, other)), None)
        if match is not None:
            replaced[id(event)] = dataclasses.replace(event, identity=match)
    return [replaced.get(id(event), event) for event in batch]


def _answer(event: NewEvent, room: RoomState | None) -> str:
    # Rocket.Chat stores every 200 body as the room's crmData: start from what it sent us, then
    # add what handling has learnt (CRM ids), so the ids are never lost.
    body = {**(event.previous_crm_data or {}), **(room.crm_data if room else {})}
    if not body:
        return _OK_ANSWER
    # storable: crmData decoded from text may hold lone surrogates, which UTF-8 cannot carry.
    return storable_text(json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def _rooms_in(tx: Tx, room_ids: Iterable[str]) -> dict[str, RoomState]:
    ids = list(room_ids)
    if not ids:
        return {}
    rows = tx.execute(
        f"SELECT room_id, crm_data, stage, newest_message_at FROM rooms WHERE room_id IN ({_marks(ids)})",
        ids,
    ).fetchall()
    return {
        str(room_id): RoomState(str(room_id), json.loads(crm_data), stage, newest)
        for room_id, crm_data, stage, newest in rows
    }


def _claim_in(
    tx: Tx, worker: str, limit: int, lease_until: float, now: float
) -> list[ClaimedEvent]:
    rows = tx.execute(
        f"""SELECT e.id FROM events AS e{tx.use_index("events_active_id")}
            WHERE e.status IN {_ACTIVE}
              AND e.next_attempt_at <= ?
              AND (e.status <> 'processing' OR e.lease_expires_at <= ?)
              AND NOT EXISTS (
                  SELECT 1 FROM events AS p
                  WHERE p.room_key = e.room_key AND p.id < e.id AND p.status IN {_ACTIVE})
            ORDER BY e.id
            LIMIT ?{tx.lock_rows}""",
        (now, now, limit),
        plan_each_time=True,  # its best plan changes as the backlog grows
    ).fetchall()
    ids = [int(row[0]) for row in rows]
    if not ids:
        return []
    tx.execute(
        f"UPDATE events SET status = 'processing', lease_owner = ?, lease_expires_at = ? "
        f"WHERE id IN ({_marks(ids)})",
        (worker, lease_until, *ids),
    )
    claimed = tx.execute(
        "SELECT id, dedup_key, room_id, type, body, received_at, attempts, handlers_done, source, "
        "deferrals, trace_context "
        f"FROM events WHERE id IN ({_marks(ids)}) ORDER BY id",
        ids,
    ).fetchall()
    rooms = _rooms_in(tx, {str(row[2]) for row in claimed if row[2] is not None})
    return [
        ClaimedEvent(
            id=int(event_id),
            dedup_key=str(key),
            room_id=room_id,
            type=str(event_type),
            body=bytes(body),
            received_at=float(received_at),
            attempts=int(attempts),
            handlers_done=frozenset(json.loads(done)),
            room=rooms.get(room_id) if room_id is not None else None,
            source=source,
            deferrals=int(deferrals),
            trace_context=trace_context,
        )
        for event_id, key, room_id, event_type, body, received_at, attempts, done, source, deferrals, trace_context in claimed
    ]


_FINISH_COLUMNS: dict[str, ValueKind] = {
    "id": "integer", "worker": "text", "status": "text", "deferred": "integer",
    "next_attempt_at": "time", "handlers_done": "text", "stale": "integer", "last_error": "text",
    "finished_at": "time",
}  # fmt: skip
_ATTEMPT_COLUMNS: dict[str, ValueKind] = {
    "event_id": "integer", "worker": "text", "started_at": "time", "finished_at": "time",
    "outcome": "text", "error": "text",
}  # fmt: skip


def _finish_all(tx: Tx, batch: list[tuple[ClaimedEvent, str, Finish]]) -> list[bool]:
    """Record a batch of outcomes (each of a different event) in at most four statements,
    however many: on PostgreSQL each statement is a round trip, on SQLite a pass through the
    driver. An outcome whose worker lost the lease writes nothing and is ``False``."""
    values: list[Any] = []
    for event, worker, result in batch:
        values += [event.id, worker, result.status, int(result.deferred),
                   result.next_attempt_at if result.next_attempt_at is not None else result.finished_at,
                   json.dumps(sorted(result.handlers_done)), int(result.stale), result.error,
                   result.finished_at if result.status != "failed" else None]  # fmt: skip
    updated = {
        int(found[0])
        for found in tx.execute(
            tx.values("v", _FINISH_COLUMNS, len(batch))
            + """UPDATE events SET status = v.status, attempts = events.attempts + 1,
                   deferrals = events.deferrals + v.deferred,
                   next_attempt_at = v.next_attempt_at, lease_owner = NULL,
                   lease_expires_at = NULL, handlers_done = v.handlers_done, stale = v.stale,
                   last_error = v.last_error, finished_at = v.finished_at
               FROM v
               WHERE events.id = v.id AND events.lease_owner = v.worker
                 AND events.status = 'processing'
               RETURNING events.id""",
            values,
        ).fetchall()
    }
    recorded = [(event, worker, result) for event, worker, result in batch if event.id in updated]
    if recorded:
        attempts: list[Any] = []
        for event, worker, result in recorded:
            attempts += [event.id, worker, result.started_at, result.finished_at, result.status,
                         result.error]  # fmt: skip
        tx.execute(
            tx.values("v", _ATTEMPT_COLUMNS, len(recorded))
            + """INSERT INTO attempts (event_id, number, worker, started_at, finished_at,
                                         outcome, error)
                 SELECT v.event_id,
                        (SELECT COALESCE(MAX(a.number), 0) + 1 FROM attempts AS a
                         WHERE a.event_id = v.event_id),
                        v.worker, v.started_at, v.finished_at, v.outcome, v.error
                 FROM v""",
            attempts,
        )
    _update_rooms(
        tx,
        [
            (event.room_id, result)
            for event, _, result in recorded
            if event.room_id is not None
            and (
                result.crm_data or result.stage is not None or result.newest_message_at is not None
            )
        ],
    )
    return [event.id in updated for event, _, _ in batch]


def _update_rooms(tx: Tx, learnt: list[tuple[str, Finish]]) -> None:
    """Merge what handling learnt into each room's state (in batch order), one read and one
    upsert for all of them."""
    if not learnt:
        return
    rooms = _rooms_in(tx, {room_id for room_id, _ in learnt})
    for room_id, result in learnt:
        current = rooms.get(room_id) or RoomState(room_id)
        newest = max(
            (t for t in (current.newest_message_at, result.newest_message_at) if t is not None),
            default=None,
        )
        rooms[room_id] = RoomState(
            room_id,
            {**current.crm_data, **result.crm_data},
            result.stage if result.stage is not None else current.stage,
            newest,
        )
    updated_at = {room_id: result.finished_at for room_id, result in learnt}
    changed = [rooms[room_id] for room_id in dict.fromkeys(room_id for room_id, _ in learnt)]
    tx.execute(
        "INSERT INTO rooms (room_id, crm_data, stage, newest_message_at, updated_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?)"] * len(changed))
        + """ ON CONFLICT (room_id) DO UPDATE SET crm_data = excluded.crm_data,
                  stage = excluded.stage, newest_message_at = excluded.newest_message_at,
                  updated_at = excluded.updated_at""",
        [value for room in changed
         for value in (room.room_id, json.dumps(room.crm_data, ensure_ascii=False), room.stage,
                       room.newest_message_at, updated_at[room.room_id])],
    )  # fmt: skip


def _replay_in(tx: Tx, ids: list[int] | None, now: float, all_handlers: bool) -> ReplayResult:
    if ids is None:
        rows = tx.execute(
            "SELECT id, status FROM events WHERE status = 'dead' ORDER BY id"
        ).fetchall()
    elif ids:
        rows = tx.execute(
            f"SELECT id, status FROM events WHERE id IN ({_marks(ids)})", ids
        ).fetchall()
    else:
        rows = []
    statuses = {int(event_id): str(status) for event_id, status in rows}
    replayed: list[int] = []
    skipped: dict[int, str] = {}
    for event_id in ids if ids is not None else sorted(statuses):
        status = statuses.get(event_id)
        if status is None:
            skipped[event_id] = "no such event"
        elif status in ("pending", "processing", "failed"):
            skipped[event_id] = f"already {status}: it will be handled"
        elif status == "done" and not all_handlers:
            skipped[event_id] = "done: every handler succeeded (use all handlers to run them again)"
        else:
            replayed.append(event_id)
    if replayed:
        reset = ", handlers_done = '[]'" if all_handlers else ""
        tx.execute(
            f"UPDATE events SET status = 'pending', attempts = 0, deferrals = 0, next_attempt_at = ?, "
            f"lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL{reset} "
            f"WHERE id IN ({_marks(replayed)})",
            (now, *replayed),
        )
    return ReplayResult(replayed, skipped)


def _as_stored(value: str | None) -> str | None:
    return None if value is None else bounded_key(storable_text(value))


def _query_conditions(tx: Tx, query: EventQuery) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("status", query.status), ("type", query.type),
                          ("room_id", bounded_key(query.room_id)), ("source", query.source)):  # fmt: skip
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if query.before_id is not None:
        conditions.append("id < ?")
        params.append(query.before_id)
    if query.after_id is not None:
        conditions.append("id > ?")
        params.append(query.after_id)
    if query.since is not None:
        first = _first_id_at(tx, query.since)
        conditions.append("id >= ?")
        params.append(first if first is not None else 2**62)
    if query.until is not None:
        after = _first_id_at(tx, query.until)
        if after is not None:
            conditions.append("id < ?")
            params.append(after)
    if query.text and query.since is None:
        top = query.before_id
        if top is None:
            row = tx.execute("SELECT id FROM events ORDER BY id DESC LIMIT 1").fetchone()
            top = int(row[0]) + 1 if row else 0
        conditions.append("id >= ?")
        params.append(top - query.text_window)
    if query.text:
        # The body as bytes: instr (SQLite) and position (PostgreSQL) read a blob as it is.
        needle = query.text.encode()
        conditions.append(
            "instr(body, ?) > 0" if tx.dialect == "sqlite" else "position(? in body) > 0"
        )
        params.append(needle)
    return conditions, params


def _first_id_at(tx: Tx, moment: float) -> int | None:
    """The id of the first event received at or after ``moment`` (``None``: none was), by a
    binary search over ids: events are stored in the order received (to within a batch)."""
    # Two ORDER BY ... LIMIT 1 reads, not MIN() and MAX() in one: SQLite would scan an index.
    first = tx.execute("SELECT id FROM events ORDER BY id LIMIT 1").fetchone()
    last = tx.execute("SELECT id, received_at FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if first is None or last is None or float(last[1]) < moment:
        return None
    low, high = int(first[0]), int(last[0])
    while low < high:  # ids have gaps (deleted rows): look at the first id at or after mid
        mid = (low + high) // 2
        found = tx.execute("SELECT id, received_at FROM events WHERE id >= ? ORDER BY id LIMIT 1",
                           (mid,)).fetchone()  # fmt: skip
        assert found is not None
        if float(found[1]) < moment:
            low = int(found[0]) + 1
        else:
            high = mid if int(found[0]) > mid else int(found[0])
    return low


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    (event_id, key, room_id, event_type, received_at, status, attempts, next_at, owner, answer,
     done, stale, error, finished_at, identity, source, *body) = row  # fmt: skip
    return StoredEvent(
        id=int(event_id),
        dedup_key=str(key),
        room_id=room_id,
        type=str(event_type),
        received_at=float(received_at),
        status=status,
        attempts=int(attempts),
        next_attempt_at=float(next_at),
        lease_owner=owner,
        answer=str(answer),
        handlers_done=tuple(json.loads(done)),
        stale=None if stale is None else bool(stale),
        last_error=redact_error(error),
        finished_at=finished_at,
        body=bytes(body[0]) if body else None,
        identity=identity,
        source=source,
    )
