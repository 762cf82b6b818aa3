"""The sender's side of the store: a durable outbox of webhook deliveries.

A delivery's life: ``put`` (committed before ``enqueue`` returns) → ``pending`` → a dispatcher
``claim``s it (``sending``, under a lease) → each attempt is ``record``ed: ``done``, ``failed``
(retry due at ``next_attempt_at``, kept across restarts) or ``dead``. Only the oldest unfinished
delivery of a (url, room) pair can be claimed, so one room's deliveries keep their order.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .batching import Batcher, each_item_once
from .database import Database, Tx, ValueKind
from .database import placeholders as _marks
from .errors import one_item_may_be_at_fault
from .keys import bounded_key
from .leased import Backlog, LeasedTable
from .redaction import redact, redact_error

__all__ = [
    "DELIVERY_OUTCOMES",
    "OUTBOX_STATUSES",
    "OutboxAttempt",
    "OutboxEntry",
    "OutboxItem",
    "OutboxStatus",
    "OutboxStore",
]

OutboxStatus = Literal["pending", "sending", "failed", "dead", "done"]
OUTBOX_STATUSES: tuple[OutboxStatus, ...] = ("pending", "sending", "failed", "dead", "done")

_ACTIVE = "('pending', 'sending', 'failed')"

DELIVERY_OUTCOMES: collections.Counter[str] = collections.Counter()
"""Attempts this process's dispatchers recorded, by outcome (``done``, ``failed``: retried
later, ``dead``); exposed as ``omnihook_outbox_deliveries_total`` by the receiver's metrics."""


@dataclass(frozen=True)
class OutboxItem:
    """A delivery to store."""

    url: str
    body: bytes
    room_id: str | None
    type: str | None
    created_at: float


@dataclass(frozen=True)
class OutboxEntry:
    """A stored delivery."""

    id: int
    url: str
    room_id: str | None
    type: str | None
    body: bytes
    created_at: float
    status: OutboxStatus
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    response_text: str | None
    finished_at: float | None


@dataclass(frozen=True)
class OutboxAttempt:
    """One HTTP attempt of a stored delivery."""

    number: int
    started_at: float
    elapsed: float
    status: int | None
    error: str | None


_COLUMNS = (
    "id, url, room_id, type, body, created_at, status, attempts, next_attempt_at, last_status, "
    "last_error, response_text, finished_at"
)


_KEPT_ERROR_TEXT = 4096
"""Characters kept of a failed delivery's answer (a 200's answer is crmData: kept whole)."""


class OutboxStore:
    """Deliveries on a :class:`Database`. All times are Unix seconds given by the caller."""

    def __init__(self, database: Database, max_batch: int = 512) -> None:
        self.database = database
        self._table = LeasedTable(database, "outbox", "sending", OUTBOX_STATUSES)
        self._puts: Batcher[OutboxItem, int] = Batcher(
            self._put_batch, max_batch, database.write_concurrency, isolate=one_item_may_be_at_fault
        )
        self._records: Batcher[_Outcome, bool] = Batcher(
            self._record_batch,
            max_batch,
            database.write_concurrency,
            isolate=one_item_may_be_at_fault,
        )

    async def close(self) -> None:
        await self._puts.close()
        await self._records.close()

    async def put(self, item: OutboxItem) -> int:
        """Store a delivery; returns its id once committed (concurrent calls share commits)."""
        return await self._puts.submit(item)

    async def _put_batch(self, batch: list[OutboxItem]) -> list[int]:
        def work(tx: Tx) -> list[int]:
            values: list[Any] = []
            for item in batch:
                room_id = bounded_key(item.room_id)
                room_key = room_id if room_id is not None else ""
                values += [item.url, room_key, room_id, item.type, item.body, item.created_at,
                           "pending", item.created_at]  # fmt: skip
            rows = tx.execute(
                "INSERT INTO outbox (url, room_key, room_id, type, body, created_at, status, "
                "next_attempt_at) VALUES "
                + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in batch)
                + " RETURNING id",
                values,
            ).fetchall()
            # Ids are assigned in VALUES order; RETURNING's row order is not promised: sort.
            return sorted(int(row[0]) for row in rows)

        return await self.database.run(work)

    async def claim(self, owner: str, limit: int, lease: float, now: float) -> list[OutboxEntry]:
        """Take up to ``limit`` due deliveries, each the oldest unfinished one of its room.

        Deliveries without a room (offline messages) are not held back by each other.
        """
        if limit <= 0:
            return []

        def work(tx: Tx) -> list[OutboxEntry]:
            rows = tx.execute(
                f"""SELECT o.id FROM outbox AS o{tx.use_index("outbox_active_id")}
                    WHERE o.status IN {_ACTIVE}
                      AND o.next_attempt_at <= ?
                      AND (o.status <> 'sending' OR o.lease_expires_at <= ?)
                      AND (o.room_key = '' OR NOT EXISTS (
                          SELECT 1 FROM outbox AS p
                          WHERE p.url = o.url AND p.room_key = o.room_key AND p.id < o.id
                            AND p.status IN {_ACTIVE}))
                    ORDER BY o.id
                    LIMIT ?{tx.lock_rows}""",
                (now, now, limit),
                plan_each_time=True,  # its best plan changes as the backlog grows
            ).fetchall()
            ids = [int(row[0]) for row in rows]
            if not ids:
                return []
            # RETURNING hands back the rows as updated: no second read of the bodies.
            claimed = _entries(
                tx.execute(
                    "UPDATE outbox SET status = 'sending', lease_owner = ?, lease_expires_at = ? "
                    f"WHERE id IN ({_marks(ids)}) RETURNING {_COLUMNS}",
                    (owner, now + lease, *ids),
                )
            )
            return sorted(claimed, key=lambda entry: entry.id)  # RETURNING's order is not promised

        return await self.database.run(work)

    async def renew(self, owner: str, ids: Iterable[int], until: float) -> None:
        """Extend the leases ``owner`` holds."""
        await self._table.renew(owner, ids, until)

    async def set_body(self, entry_id: int, owner: str, body: bytes) -> None:
        """Replace a claimed delivery's body before its first attempt (crmData echo), so that
        every retry sends the very same bytes."""
        await self.database.run(
            lambda tx: tx.execute(
                "UPDATE outbox SET body = ? WHERE id = ? AND lease_owner = ? AND attempts = 0",
                (body, entry_id, owner),
            )
        )

    async def record(
        self,
        entry: OutboxEntry,
        owner: str,
        attempt: OutboxAttempt,
        status: Literal["done", "failed", "dead"],
        next_attempt_at: float,
        response_text: str | None,
    ) -> bool:
        """Record one attempt and the delivery's new state; ``False`` if the lease was lost.

        A ``done`` room delivery also becomes the room's crmData for later deliveries. Concurrent
        calls share commits.
        """
        # Where the sender's outcomes are recorded: masked here, before the transaction (an
        # endpoint may echo our token back); a 200's text is crmData, kept exact.
        attempt = dataclasses.replace(attempt, error=redact_error(attempt.error))
        DELIVERY_OUTCOMES[status] += 1
        if status != "done" and response_text is not None:
            # An error page can be megabytes: keep its start, masked, not the whole of it.
            response_text = redact(response_text[:_KEPT_ERROR_TEXT])
        return await self._records.submit(
            _Outcome(entry, owner, attempt, status, next_attempt_at, response_text)
        )

    async def _record_batch(self, batch: list[_Outcome]) -> list[bool]:
        return await self.database.run(
            lambda tx: each_item_once(
                batch, lambda outcome: outcome.entry.id, lambda part: _record_outcomes(tx, part)
            )
        )

    async def release(self, owner: str, ids: Iterable[int]) -> None:
        """Give back claimed deliveries without an attempt (shutdown)."""
        await self._table.release(owner, ids)

    async def crm_data(self, url: str, room_id: str) -> str | None:
        """The body of the last 200 for a room at ``url`` (Rocket.Chat's crmData), if any."""

        def work(tx: Tx) -> str | None:
            row = tx.execute(
                "SELECT response_text FROM outbox_crm_data WHERE url = ? AND room_id = ?",
                (url, bounded_key(room_id)),
            ).fetchone()
            return str(row[0]) if row else None

        return await self.database.run(work)

    async def get(self, entry_id: int) -> OutboxEntry | None:
        entries = await self.database.run(
            lambda tx: _select_entries(tx, "WHERE id = ?", [entry_id])
        )
        return entries[0] if entries else None

    async def attempts(self, entry_id: int) -> list[OutboxAttempt]:
        def work(tx: Tx) -> list[OutboxAttempt]:
            rows = tx.execute(
                "SELECT number, started_at, elapsed, status, error FROM outbox_attempts "
                "WHERE outbox_id = ? ORDER BY number",
                (entry_id,),
            ).fetchall()
            # Masked on the way out too: rows written before redaction existed.
            return [
                OutboxAttempt(number, started, elapsed, status, redact_error(error))
                for number, started, elapsed, status, error in rows
            ]

        return await self.database.run(work)

    async def find(
        self, status: OutboxStatus | None = None, room_id: str | None = None, limit: int = 50
    ) -> list[OutboxEntry]:
        """The newest deliveries first, optionally of one status and/or room."""
        where, params = LeasedTable.filters(status, room_id)
        return await self.database.run(
            lambda tx: _select_entries(tx, f"{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        )

    async def counts(self) -> dict[str, int]:
        """How many deliveries are in each status."""
        return await self._table.counts()

    async def backlog(self) -> Backlog:
        """Deliveries not done (pending, sending, failed, dead) and the oldest unfinished one's
        creation."""
        return await self._table.backlog("created_at")

    async def next_due(self) -> float | None:
        """When the earliest unfinished delivery is due, or ``None`` when nothing is left."""

        def work(tx: Tx) -> float | None:
            row = tx.execute(
                f"SELECT MIN(next_attempt_at) FROM outbox{tx.use_index('outbox_active_due')} "
                f"WHERE status IN {_ACTIVE}"
            ).fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return await self.database.run(work)

    async def retry(self, ids: Iterable[int] | None, now: float) -> list[int]:
        """Make dead (or failed) deliveries due now with a fresh retry budget: ``ids``, or every
        dead one when ``None``. Returns the ids that were changed."""
        id_list = None if ids is None else list(ids)

        def work(tx: Tx) -> list[int]:
            if id_list is None:
                where, params = "WHERE status = 'dead'", []
            elif not id_list:
                return []
            else:
                where = f"WHERE id IN ({_marks(id_list)}) AND status IN ('dead', 'failed')"
                params = list(id_list)
            rows = tx.execute(f"SELECT id FROM outbox {where}", params).fetchall()
            changed = sorted(int(row[0]) for row in rows)
            if changed:
                tx.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                    f"finished_at = NULL WHERE id IN ({_marks(changed)})",
                    (now, *changed),
                )
            return changed

        return await self.database.run(work)

    async def purge(self, statuses: Sequence[OutboxStatus], finished_before: float) -> int:
        """Delete finished deliveries (``done``/``dead``) that finished before a time."""
        wanted = [s for s in statuses if s in ("done", "dead")]
        if not wanted:
            return 0

        def work(tx: Tx) -> int:
            condition = f"status IN ({_marks(wanted)}) AND finished_at < ?"
            tx.execute(
                f"DELETE FROM outbox_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE {condition})",
                (*wanted, finished_before),
            )
            return tx.execute(
                f"DELETE FROM outbox WHERE {condition}", (*wanted, finished_before)
            ).rowcount

        return await self.database.run(work)


@dataclass(frozen=True)
class _Outcome:
    """An attempt to record, with the delivery's new state."""

    entry: OutboxEntry
    owner: str
    attempt: OutboxAttempt
    status: Literal["done", "failed", "dead"]
    next_attempt_at: float
    response_text: str | None


_OUTCOME_COLUMNS: dict[str, ValueKind] = {
    "id": "integer", "owner": "text", "status": "text", "next_attempt_at": "time",
    "last_status": "integer", "last_error": "text", "response_text": "text", "finished_at": "time",
}  # fmt: skip
_ATTEMPT_COLUMNS: dict[str, ValueKind] = {
    "outbox_id": "integer", "started_at": "time", "elapsed": "time", "status": "integer",
    "error": "text",
}  # fmt: skip


def _record_outcomes(tx: Tx, batch: list[_Outcome]) -> list[bool]:
    """Record a batch of outcomes (each of a different delivery) in three statements, however
    many: on PostgreSQL each statement is a round trip, on SQLite a pass through the driver."""
    values: list[Any] = []
    for outcome in batch:
        attempt = outcome.attempt
        finished = attempt.started_at + attempt.elapsed
        values += [outcome.entry.id, outcome.owner, outcome.status, outcome.next_attempt_at,
                   attempt.status, attempt.error, outcome.response_text,
                   finished if outcome.status != "failed" else None]  # fmt: skip
    updated = {
        int(found[0])
        for found in tx.execute(
            tx.values("v", _OUTCOME_COLUMNS, len(batch))
            + """UPDATE outbox SET status = v.status, attempts = outbox.attempts + 1,
                   next_attempt_at = v.next_attempt_at, lease_owner = NULL,
                   lease_expires_at = NULL, last_status = v.last_status,
                   last_error = v.last_error, response_text = v.response_text,
                   finished_at = v.finished_at
               FROM v
               WHERE outbox.id = v.id AND outbox.lease_owner = v.owner
                 AND outbox.status = 'sending'
               RETURNING outbox.id""",
            values,
        ).fetchall()
    }
    recorded = [outcome for outcome in batch if outcome.entry.id in updated]
    if recorded:
        attempts: list[Any] = []
        for outcome in recorded:
            attempt = outcome.attempt
            attempts += [outcome.entry.id, attempt.started_at, attempt.elapsed, attempt.status,
                         attempt.error]  # fmt: skip
        # The number continues the delivery's history: a manual retry resets ``attempts``.
        tx.execute(
            tx.values("v", _ATTEMPT_COLUMNS, len(recorded))
            + """INSERT INTO outbox_attempts (outbox_id, number, started_at, elapsed, status,
                                                error)
                 SELECT v.outbox_id,
                        (SELECT COALESCE(MAX(a.number), 0) + 1 FROM outbox_attempts AS a
                         WHERE a.outbox_id = v.outbox_id),
                        v.started_at, v.elapsed, v.status, v.error
                 FROM v""",
            attempts,
        )
    # A done room delivery's answer becomes the room's crmData; within the batch the last wins.
    crm_data: dict[tuple[str, str], list[Any]] = {}
    for outcome in recorded:
        entry = outcome.entry
        if (
            outcome.status == "done"
            and entry.room_id is not None
            and outcome.response_text is not None
        ):
            attempt = outcome.attempt
            crm_data[entry.url, entry.room_id] = [entry.url, entry.room_id, outcome.response_text,
                                                  attempt.started_at + attempt.elapsed]  # fmt: skip
    if crm_data:
        tx.execute(
            "INSERT INTO outbox_crm_data (url, room_id, response_text, updated_at) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(crm_data))
            + """ ON CONFLICT (url, room_id) DO UPDATE SET
                      response_text = excluded.response_text, updated_at = excluded.updated_at""",
            [value for row in crm_data.values() for value in row],
        )
    return [outcome.entry.id in updated for outcome in batch]


def _select_entries(tx: Tx, tail: str, params: Sequence[Any]) -> list[OutboxEntry]:
    return _entries(tx.execute(f"SELECT {_COLUMNS} FROM outbox {tail}", params))


def _entries(result: Tx) -> list[OutboxEntry]:
    """The entries of a statement that returned ``_COLUMNS``."""
    rows = result.fetchall()
    return [
        OutboxEntry(
            id=int(row[0]),
            url=str(row[1]),
            room_id=row[2],
            type=row[3],
            body=bytes(row[4]),
            created_at=float(row[5]),
            status=row[6],
            attempts=int(row[7]),
            next_attempt_at=float(row[8]),
            last_status=row[9],
            last_error=redact_error(row[10]),
            response_text=row[11],
            finished_at=row[12],
        )
        for row in rows
    ]
