"""What CRM adapters remember between events: per adapter and key, the ids they created.

A CRM note is not idempotent: created twice, it exists twice. An adapter records the note's id
under the room right after creating it, and on the next event of that room (a redelivered close,
an edit after close) it updates that note instead.
"""

from __future__ import annotations

import json
from typing import Any

from .database import Database, Tx
from .keys import bounded_key

__all__ = ["CrmLinks"]


class CrmLinks:
    """A small JSON document per (adapter, key), on the store's database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, adapter: str, key: str) -> dict[str, Any]:
        """What ``adapter`` stored under ``key`` (``{}`` when nothing)."""
        key = bounded_key(key)

        def work(tx: Tx) -> dict[str, Any]:
            row = tx.execute(
                "SELECT data FROM crm_links WHERE adapter = ? AND link_key = ?", (adapter, key)
            ).fetchone()
            return dict(json.loads(row[0])) if row else {}

        return await self.database.run(work)

    async def for_key(self, key: str) -> dict[str, dict[str, Any]]:
        """What every adapter stored under ``key`` (a room): ``{adapter: ids}``."""
        key = bounded_key(key)

        def work(tx: Tx) -> dict[str, dict[str, Any]]:
            rows = tx.execute(
                "SELECT adapter, data FROM crm_links WHERE link_key = ? ORDER BY adapter", (key,)
            ).fetchall()
            return {str(adapter): dict(json.loads(data)) for adapter, data in rows}

        return await self.database.run(work)

    async def update(
        self, adapter: str, key: str, values: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """Merge ``values`` into what ``adapter`` stored under ``key``; returns the result."""
        key = bounded_key(key)

        def work(tx: Tx) -> dict[str, Any]:
            row = tx.execute(
                f"SELECT data FROM crm_links WHERE adapter = ? AND link_key = ?{tx.for_update}",
                (adapter, key),
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **values}
            tx.execute(
                """INSERT INTO crm_links (adapter, link_key, data, updated_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (adapter, link_key) DO UPDATE SET data = excluded.data,
                       updated_at = excluded.updated_at""",
                (adapter, key, json.dumps(merged, ensure_ascii=False), now),
            )
            return merged

        return await self.database.run(work)
