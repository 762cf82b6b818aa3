"""Small named records the processes sharing a store tell each other: how the last reconcile
went, a CRM adapter's circuit. Read by ``omnihook status`` and the metrics of any process.

>>> await store.state.put("reconcile", {"outcome": "ok", "rebuilt": 3}, now)   # doctest: +SKIP
>>> await store.state.get("reconcile")                                      # doctest: +SKIP
StateRecord(name='reconcile', value={'outcome': 'ok', 'rebuilt': 3}, updated_at=...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .database import Database, Tx
from .keys import storable_text

__all__ = ["SharedState", "StateRecord"]


@dataclass(frozen=True)
class StateRecord:
    name: str
    value: dict[str, Any]
    updated_at: float


class SharedState:
    """The ``omnihook_state`` table: one JSON object per name, the last write wins."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def put(self, name: str, value: dict[str, Any], now: float) -> None:
        """Record ``value`` under ``name`` (replacing what was there)."""
        text = storable_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        await self.database.run(
            lambda tx: tx.execute(
                """INSERT INTO omnihook_state (name, value, updated_at) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at""",
                (name, text, now),
            )
        )

    async def get(self, name: str) -> StateRecord | None:
        """What was last recorded under ``name``, if anything."""
        found = await self.find(name)
        return found[0] if found and found[0].name == name else None

    async def find(self, prefix: str = "") -> list[StateRecord]:
        """Every record whose name starts with ``prefix``, by name."""

        def work(tx: Tx) -> list[StateRecord]:
            rows = tx.execute(
                "SELECT name, value, updated_at FROM omnihook_state ORDER BY name"
            ).fetchall()
            return [StateRecord(str(name), json.loads(str(value)), float(updated_at))
                    for name, value, updated_at in rows if str(name).startswith(prefix)]  # fmt: skip

        return await self.database.run(work)
