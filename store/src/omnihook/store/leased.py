"""What the events table and the outbox table have in common: rows claimed under a lease by an
owner, a status per row, and lookups by status and room. One implementation, a table each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database, Tx, placeholders
from .keys import bounded_key

__all__ = ["Backlog", "LeasedTable"]


@dataclass(frozen=True)
class Backlog:
    """What is left to do in a table: how many rows in each status but ``done``, and when the
    oldest unfinished row (pending, being handled, or waiting for a retry) was stored."""

    counts: dict[str, int]
    oldest_at: float | None

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unfinished row has waited (0 when there is none)."""
        return max(0.0, now - self.oldest_at) if self.oldest_at is not None else 0.0


@dataclass(frozen=True)
class LeasedTable:
    """A table of leased rows: its name, the status of a claimed row, and every status."""

    database: Database
    name: str
    busy: str
    statuses: Sequence[str]

    async def renew(self, owner: str, ids: Iterable[int], until: float) -> None:
        """Extend the leases ``owner`` holds on ``ids``."""
        id_list = list(ids)
        if id_list:
            await self.database.run(
                lambda tx: tx.execute(
                    f"UPDATE {self.name} SET lease_expires_at = ? WHERE id IN ({placeholders(id_list)}) "
                    "AND lease_owner = ? AND status = ?",
                    (until, *id_list, owner, self.busy),
                )
            )

    async def release(self, owner: str, ids: Iterable[int]) -> None:
        """Give back claimed rows unhandled (shutdown): claimable again at once, as they were."""
        id_list = list(ids)
        if id_list:
            await self.database.run(
                lambda tx: tx.execute(
                    f"UPDATE {self.name} SET status = CASE WHEN attempts = 0 THEN 'pending' "
                    "ELSE 'failed' END, lease_owner = NULL, lease_expires_at = NULL "
                    f"WHERE id IN ({placeholders(id_list)}) AND lease_owner = ? AND status = ?",
                    (*id_list, owner, self.busy),
                )
            )

    async def counts(self) -> dict[str, int]:
        """How many rows are in each status."""

        def work(tx: Tx) -> dict[str, int]:
            rows = tx.execute(
                f"SELECT status, COUNT(*) FROM {self.name} GROUP BY status"
            ).fetchall()
            return dict.fromkeys(self.statuses, 0) | {str(s): int(n) for s, n in rows}

        return await self.database.run(work)

    async def backlog(self, stored_at: str) -> Backlog:
        """:class:`Backlog` of the table (``stored_at``: the column of a row's arrival). Reads
        only rows that are not done, through the status indexes: cheap however large the
        history."""
        open_statuses = [status for status in self.statuses if status != "done"]
        active = [status for status in open_statuses if status != "dead"]

        def work(tx: Tx) -> Backlog:
            rows = tx.execute(
                f"SELECT status, COUNT(*) FROM {self.name} "
                f"WHERE status IN ({placeholders(open_statuses)}) GROUP BY status",
                open_statuses,
            ).fetchall()
            # The oldest unfinished row is the one with the lowest id (ids grow with time).
            oldest = tx.execute(
                f"SELECT {stored_at} FROM {self.name} WHERE status IN "
                f"({', '.join(repr(s) for s in active)}) ORDER BY id LIMIT 1"
            ).fetchone()
            counts = dict.fromkeys(open_statuses, 0) | {str(s): int(n) for s, n in rows}
            return Backlog(counts, float(oldest[0]) if oldest else None)

        return await self.database.run(work)

    @staticmethod
    def filters(status: str | None, room_id: str | None) -> tuple[str, list[Any]]:
        """A ``WHERE`` clause (or nothing) for an optional status and an optional room."""
        conditions: list[str] = []
        params: list[Any] = []
        if status is not None:
            conditions.append("status = ?")
            params.append(status)
        if room_id is not None:
            conditions.append("room_id = ?")
            params.append(bounded_key(room_id))
        return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params
