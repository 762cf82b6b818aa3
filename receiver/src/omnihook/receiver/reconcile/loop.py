"""Continuous reconciling inside ``serve`` and ``worker``: every few minutes, the last hours.

The window ends ``lag`` seconds before now: Rocket.Chat retries a failed delivery for about 80 s
(5 attempts, 4 × its timeout apart) and its first attempt may still be in flight, so an event
younger than that is not taken for a gap. Of several processes sharing a store, one reconciles at
a time: the one holding the store's ``reconcile`` lock (renewed each round; taken over when its
holder stops).

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
from collections.abc import Callable

from omnihook.store import Store, StoreError

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
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if every <= 0 or window <= 0 or lag < 0:
            raise ValueError(
                "reconcile_every and reconcile_window must be positive, reconcile_lag not negative"
            )
        self.api = api
        self.store = store
        self.every = every
        self.window = window
        self.lag = lag
        self.configured = configured
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock
        self.rounds = 0
        """Rounds this process reconciled (it held the lock)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile every ``every`` seconds until ``stop`` is set; failures are logged and the
        next round tries again."""
        logger.info(
            "reconciling with Rocket.Chat every %g s: the %g s before now - %g s",
            self.every, self.window, self.lag,
        )  # fmt: skip
        try:
            while not stop.is_set():
                await self.once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every)
        finally:
            with contextlib.suppress(StoreError):  # else it expires by itself
                await self.store.locks.release(LOCK_NAME, self.owner)

    async def once(self) -> ReconcileReport | None:
        """One round, if this process holds the lock: find the gaps and fill them."""
        now = self.clock()
        try:
            await self.store.connect()
            # Held past this round, however long it takes (renewed by the next one); a process
            # that dies leaves it to expire, then another takes over.
            until = now + max(2 * self.every, _LEASE)
            if not await self.store.locks.hold(LOCK_NAME, self.owner, until, now):
                return None
            switches = await read_switches(self.api, self.configured)
            settings = await read_build_settings(self.api, switches)
            reconciler = Reconciler(self.api, self.store, switches, settings=settings,
                                    clock=self.clock)  # fmt: skip
            end = now - self.lag
            report = await reconciler.apply(await reconciler.find(end - self.window, end))
        except RocketChatError as exc:
            logger.error("reconcile skipped this round, Rocket.Chat: %s", exc)
            return None
        except StoreError as exc:
            logger.error("reconcile skipped this round, the store: %s", exc)
            return None
        self.rounds += 1
        missing = len(report.gaps) - len(report.rebuildable)
        logger.info(
            "reconcile: %d room(s), %d event(s) Rocket.Chat sent, %d rebuilt%s",
            report.rooms, report.expected, len(report.applied),
            f", {missing} missing that cannot be rebuilt" if missing else "",
        )  # fmt: skip
        return report
