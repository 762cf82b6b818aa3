"""What the events table and the outbox table have in common: rows claimed under a lease by an
owner, a status per row, and lookups by status and room. One implementation, a table each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database, Tx, placeholders
from .keys import bounded_key

__all__ = ["LeasedTable"]


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
