"""Named locks with an expiry, on the store's database: one process of many does a job at a time.

Several ``omnihook serve`` and ``worker`` processes may share a store; a job such as reconciling
must run in one of them at a time. The holder renews its lock while it works; if it dies, the lock
expires and another process takes it over.

>>> if await store.locks.hold("reconcile", owner, now + 300, now):    # doctest: +SKIP
...     ...  # this process reconciles until it stops renewing
"""

from __future__ import annotations

from .database import Database, Tx

__all__ = ["Locks"]


class Locks:
    """The ``omnihook_locks`` table. All times are Unix seconds given by the caller."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def hold(self, name: str, owner: str, until: float, now: float) -> bool:
        """Take or renew ``name`` for ``owner`` until ``until``; ``False`` while another owner
        holds it (and its lock has not expired)."""

        def work(tx: Tx) -> bool:
            tx.execute(
                """INSERT INTO omnihook_locks (name, owner, expires_at) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                       expires_at = excluded.expires_at
                   WHERE omnihook_locks.owner = excluded.owner
                      OR omnihook_locks.expires_at <= ?""",
                (name, owner, until, now),
            )
            row = tx.execute("SELECT owner FROM omnihook_locks WHERE name = ?", (name,)).fetchone()
            return row is not None and row[0] == owner

        return await self.database.run(work)

    async def release(self, name: str, owner: str) -> None:
        """Give ``name`` up, if ``owner`` holds it."""
        await self.database.run(
            lambda tx: tx.execute(
                "DELETE FROM omnihook_locks WHERE name = ? AND owner = ?", (name, owner)
            )
        )
