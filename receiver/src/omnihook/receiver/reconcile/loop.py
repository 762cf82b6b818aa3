"""Continuous reconciling inside ``serve`` and ``worker``: every few minutes, the last hours.

The window ends ``lag`` seconds before now: Rocket.Chat retries a failed delivery for about 80 s
(5 attempts, 4 × its timeout apart) and its first attempt may still be in flight, so an event
younger than that is not taken for a gap. Of several processes sharing a store, one reconciles at
a time: the one holding the store's ``reconcile`` lock (renewed while it works; taken over when
its holder stops renewing it).

>>> loop = ReconcileLoop(api, store, every=600, window=86400, lag=300)   # doctest: +SKIP
>>> task = asyncio.create_task(loop.run(stop))                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from omnihook.store import Store, StoreError

from ..ops.metrics import METRICS
from ..ops.status import RECONCILE_STATE
from ..rest import RocketChatApi, RocketChatError
from .reconciler import Reconciler, ReconcileReport, read_build_settings
from .switches import WebhookSwitches, read_switches

__all__ = ["LOCK_NAME", "ReconcileLoop"]

logger = logging.getLogger("omnihook.reconcile")

LOCK_NAME = "reconcile"
_LEASE = 300.0


class ReconcileLoop:
    """Reconciles the ``window`` seconds before ``now - lag``, every ``every`` seconds."""

    def __init__(
        self,
        api: RocketChatApi,
        store: Store,
        *,
        every: float,
        window: float,
        lag: float,
        configured: WebhookSwitches | None = None,
        not_before: float | None = None,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if every <= 0 or window <= 0 or lag < 0:
            raise ValueError(
                "reconcile_every and reconcile_window must be positive, reconcile_lag not negative"
            )
        if window < every:
            raise ValueError(
                f"reconcile_window ({window:g} s) is shorter than reconcile_every ({every:g} s): "
                "what happens between two rounds' windows would never be looked at"
            )
        self.api = api
        self.store = store
        self.every = every
        self.window = window
        self.lag = lag
        self.configured = configured
        self.not_before = not_before
        """Nothing older is rebuilt (Unix seconds). ``None``: the first webhook the store
        received, so that turning reconcile on does not replay the past into a CRM."""
        # Unique even when two hosts share a name or a container reuses a pid.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = max(2 * every, _LEASE)
        """How long the lock outlives its last renewal."""
        self.clock = clock
        self.sleep = sleep
        """What the lock's renewals wait with (tests pass one that moves their clock)."""
        self.rounds = 0
        """Rounds this process reconciled (it held the lock)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile every ``every`` seconds until ``stop`` is set. A failed round is logged and
        the next one tries again; ``stop`` ends a round in progress between two of its reads
        (what it accepted so far stays, the rest comes next time)."""
        logger.info(
            "reconciling with Rocket.Chat every %g s: the %g s before now - %g s",
            self.every, self.window, self.lag,
        )  # fmt: skip
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                round_ = asyncio.create_task(self.once())
                await asyncio.wait({round_, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not round_.done():
                    round_.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await round_
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopping), self.every)
        finally:
            stopping.cancel()
            with contextlib.suppress(StoreError):  # else it expires by itself
                await self.store.locks.release(LOCK_NAME, self.owner)

    async def once(self) -> ReconcileReport | None:
        """One round, if this process holds the lock: find the gaps and fill them. Nothing it
        meets escapes: every failure is logged and the round ends."""
        now = self.clock()
        try:
            await self.store.connect()
            if not await self._hold(now):
                return None
            renewing = asyncio.create_task(self._keep_holding())
            try:
                report = await self._round(now)
                if report is None:
                    return None
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
        except RocketChatError as exc:
            METRICS.reconcile_rounds.labels(outcome="failed").inc()
            logger.error("reconcile skipped this round, Rocket.Chat: %s", exc)
            await self._record(now, {"outcome": "failed", "error": f"Rocket.Chat: {exc}"})
            return None
        except StoreError as exc:
            METRICS.reconcile_rounds.labels(outcome="failed").inc()
            logger.error("reconcile skipped this round, the store: %s", exc)
            await self._record(now, {"outcome": "failed", "error": f"the store: {exc}"})
            return None
        except Exception:  # a bug must not end reconciling for the process's life
            METRICS.reconcile_rounds.labels(outcome="failed").inc()
            logger.exception("reconcile failed this round; the next one tries again")
            await self._record(now, {"outcome": "failed", "error": "see the log of " + self.owner})
            return None
        self.rounds += 1
        METRICS.reconcile_rounds.labels(
            outcome="incomplete" if report.skipped_rooms else "ok"
        ).inc()
        METRICS.reconcile_gaps.inc(len(report.gaps))
        METRICS.reconcile_rebuilt.inc(len(report.applied))
        METRICS.reconcile_last_success.set(time.time())
        await self._record(now, {
            "outcome": "incomplete" if report.skipped_rooms else "ok", "rooms": report.rooms,
            "expected": report.expected, "gaps": len(report.gaps), "rebuilt": len(report.applied),
            "skipped_rooms": len(report.skipped_rooms), "since": report.since,
            "until": report.until,
        })  # fmt: skip
        missing = len(report.gaps) - len(report.rebuildable)
        logger.info(
            "reconcile: %d room(s), %d event(s) Rocket.Chat sent, %d rebuilt%s",
            report.rooms, report.expected, len(report.applied),
            f", {missing} missing that cannot be rebuilt" if missing else "",
        )  # fmt: skip
        for room_id, why in report.skipped_rooms:
            logger.warning("reconcile left room %s out: %s", room_id, why)
        for note in report.notes:
            logger.warning("reconcile: %s", note)
        return report

    async def _record(self, now: float, result: dict[str, object]) -> None:
        """Tell every process sharing the store how this round went (``omnihook status``)."""
        with contextlib.suppress(StoreError):  # the round is over either way
            await self.store.state.put(RECONCILE_STATE, {**result, "by": self.owner}, now)

    async def _round(self, now: float) -> ReconcileReport | None:
        end = now - self.lag
        floor = self.not_before
        if floor is None:
            floor = await self.store.events.first_received("webhook")
            if floor is None:
                logger.info("reconcile waits for the first webhook: nothing to compare yet")
                return None
            self.not_before = floor  # it cannot change: events are kept
        start = max(end - self.window, floor)
        if start >= end:
            return None
        switches = await read_switches(self.api, self.configured)
        settings = await read_build_settings(self.api, switches)
        reconciler = Reconciler(self.api, self.store, switches, settings=settings,
                                clock=self.clock)  # fmt: skip
        return await reconciler.apply(await reconciler.find(start, end))

    async def _hold(self, now: float) -> bool:
        # Held past this round by a lease; renewed while the round runs. A process that dies
        # stops renewing, its lease expires, and another takes over.
        return await self.store.locks.hold(LOCK_NAME, self.owner, now + self.lease, now)

    async def _keep_holding(self) -> None:
        while True:
            await self.sleep(self.lease / 3)
            with contextlib.suppress(StoreError):  # the round's own reads will say so
                await self._hold(self.clock())
