"""Whether the store can take a delivery now: a real write, with a deadline.

A ping proves that the database answers, not that a delivery would be kept: a full disk, a
read-only file, a revoked ``INSERT`` or a lock held by another process all answer pings. The probe
runs the write path itself, in one transaction: an ``INSERT`` into ``events`` that selects no row
(it needs the same privilege and, on SQLite, a writable file) and an update of the one row of
``omnihook_health``, committed (it needs disk space and the write lock).

>>> await store.health.check()      # doctest: +SKIP
(raises StoreUnavailable naming the cause when the store cannot write)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .database import Database, Tx
from .errors import StoreError, StoreUnavailable

__all__ = ["DEFAULT_PROBE_TIMEOUT", "WriteProbe"]

DEFAULT_PROBE_TIMEOUT = 3.0
"""Seconds a write may take before the store counts as unavailable (a lock held too long)."""


class WriteProbe:
    """Checks that the store can write: ``connect`` (open and migrate it if it is not), then
    the write, both within ``timeout`` seconds. Concurrent checks share one probe; a success is
    remembered for ``max_age`` seconds (a load balancer polling often costs one write a second),
    a failure is not (the next check probes again, so recovery shows at once).

    A write that overruns its deadline goes on in the background, and the checks that follow
    wait for that same write (each within its own deadline) rather than queue more writes
    behind it, ahead of real deliveries.
    """

    def __init__(
        self,
        database: Database,
        connect: Callable[[], Awaitable[None]] | None = None,
        timeout: float = DEFAULT_PROBE_TIMEOUT,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.timeout = timeout
        self.max_age = max_age
        self._connect = connect
        self._clock = clock
        self._succeeded_at: float | None = None
        self._running: asyncio.Future[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    async def check(self) -> None:
        """Return if the store can write now; raise :class:`StoreUnavailable` saying why not."""
        if self._succeeded_at is not None and self._clock() - self._succeeded_at < self.max_age:
            return
        if self._running is None or self._running.done():
            self._running = _observed(asyncio.ensure_future(self._probe()))
        await asyncio.shield(self._running)

    async def _probe(self) -> None:
        self._succeeded_at = None
        if self._writing is None or self._writing.done():
            self._writing = _observed(asyncio.ensure_future(self._attempt()))
        try:
            await asyncio.wait_for(asyncio.shield(self._writing), self.timeout)
        except TimeoutError:
            raise StoreUnavailable(
                f"store {self.database.config.display}: opening it and writing did not finish "
                f"within {self.timeout:g} s (a lock held by another process, or a stalled disk "
                "or network)",
                "timeout",
            ) from None
        except StoreUnavailable:
            raise
        except StoreError as exc:
            raise StoreUnavailable(str(exc)) from exc
        self._succeeded_at = self._clock()

    async def _attempt(self) -> None:
        if self._connect is not None:
            await self._connect()
        await self.database.run(_write)


def _observed(future: asyncio.Future[None]) -> asyncio.Future[None]:
    """``future``, its outcome read when it ends even if nobody awaits it any more (a probe that
    outlived its callers: no "exception was never retrieved")."""
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


def _write(tx: Tx) -> None:
    tx.execute(
        "INSERT INTO events (dedup_key, room_key, type, body, received_at, status, "
        "next_attempt_at, answer) SELECT 'probe', 'probe', 'probe', ?, 0, 'probe', 0, '' "
        "WHERE 1 = 0",
        (b"",),
    )
    tx.execute("UPDATE omnihook_health SET checked_at = ? WHERE id = 1", (time.time(),))
