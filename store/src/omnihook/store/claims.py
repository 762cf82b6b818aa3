"""The loop that both the receiver's worker and the sender's outbox dispatcher run: claim work
from the store under a lease, handle up to ``concurrency`` items at once, keep the leases alive,
hand back what is unfinished at shutdown, and ride out store outages."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .errors import StoreError

__all__ = ["ClaimLoop"]

Item = TypeVar("Item")
T = TypeVar("T")


class ClaimLoop(ABC, Generic[Item]):
    """Claims items (each with an integer id) and handles them until stopped."""

    def __init__(
        self,
        *,
        concurrency: int,
        lease: float,
        poll_interval: float,
        name: str | None,
        logger: logging.Logger,
        noun: str,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease <= 0:
            raise ValueError(f"lease must be positive, got {lease}")
        self.concurrency = concurrency
        self.claim_batch = max(1, concurrency // 4)
        """Free slots a busy loop waits for before it claims again (one transaction per batch)."""
        self.lease = lease
        self.poll_interval = poll_interval
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._logger = logger
        self._noun = noun
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._claiming = asyncio.Lock()  # run() and a drain may both claim: never beyond the cap
        self._stopping = False
        self._store_down_since: float | None = None

    # -- what a subclass provides --------------------------------------------------------------

    @abstractmethod
    async def claim(self, limit: int) -> list[Item]:
        """Take up to ``limit`` due items from the store under this loop's lease."""

    @abstractmethod
    def item_id(self, item: Item) -> int: ...

    @abstractmethod
    async def handle(self, item: Item) -> None:
        """Handle one item and record its outcome (see :meth:`persist`)."""

    @abstractmethod
    async def renew(self, ids: list[int]) -> None:
        """Extend the leases on ``ids``."""

    @abstractmethod
    async def release(self, ids: list[int]) -> None:
        """Give ``ids`` back unhandled."""

    async def idle_wait(self) -> float:
        """Seconds to wait for new work when there is none (at most; :meth:`wake` cuts it short)."""
        return self.poll_interval

    # -- the loop --------------------------------------------------------------------------------

    def wake(self) -> None:
        """New work may be waiting (saves waiting for the next poll)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and handle until :meth:`stop` is called."""
        heartbeat = asyncio.create_task(self._renew_leases(), name=f"omnihook-{self._noun}-leases")
        try:
            while not self._stopping:
                # Cleared before the claim: a wake while it runs (work committed after the
                # claim's snapshot) must make the wait below return at once, not be lost.
                self._wakeup.clear()
                claimed = await self._claim_some()
                if claimed and len(self._inflight) < self.concurrency:
                    continue  # there may be more work right away
                # Busy: the next finished item wakes us. Idle: sleep until work is due.
                wait = self.poll_interval if self._inflight else await self.idle_wait()
                # A real wait even under a test's fake clock: only drains jump in time.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let items in hand finish for ``grace`` seconds, hand back the rest."""
        self._stopping = True
        self.wake()
        tasks = list(self._inflight.values())
        if not tasks:
            return
        _, still_running = await asyncio.wait(tasks, timeout=grace)
        unfinished = [item_id for item_id, task in self._inflight.items() if task in still_running]
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        if unfinished:
            with contextlib.suppress(StoreError):
                await self.release(unfinished)
            self._logger.info("released %d %s(s) still being handled", len(unfinished), self._noun)

    async def handle_due(self) -> None:
        """Handle everything that is due now, then return (items due later are left)."""
        while True:
            claimed = await self._claim_some()
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()))
            elif not claimed:
                return

    async def persist(self, write: Callable[[], Awaitable[T]]) -> T | None:
        """Run a store write that must not be lost (an outcome: losing it would redo the work),
        retrying through outages while the lease lasts; ``None`` if stopped meanwhile."""
        delay = 0.1
        while True:
            try:
                result = await write()
            except StoreError as exc:
                self.store_trouble(exc)
                if self._stopping:
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.lease / 3)
            else:
                self.store_back()
                return result

    def store_trouble(self, exc: StoreError) -> None:
        """Note an outage (logged once until the store is back)."""
        if self._store_down_since is None:
            self._store_down_since = time.monotonic()
            self._logger.error("store unavailable, will keep trying: %s", exc)

    def store_back(self) -> None:
        if self._store_down_since is not None:
            down_for = time.monotonic() - self._store_down_since
            self._store_down_since = None
            self._logger.warning("store reachable again after %.1f s", down_for)

    async def _claim_some(self) -> int:
        async with self._claiming:
            free = self.concurrency - len(self._inflight)
            # Under load, slots free up one at a time; claiming for each would cost a
            # transaction per item. Wait until a quarter of the slots are free (or none is
            # busy), so that each claim takes a batch.
            if free <= 0 or (self._inflight and free < self.claim_batch):
                return 0
            try:
                claimed = await self.claim(free)
            except StoreError as exc:
                self.store_trouble(exc)
                return 0
            self.store_back()
            for item in claimed:
                item_id = self.item_id(item)
                task = asyncio.create_task(
                    self.handle(item), name=f"omnihook-{self._noun}-{item_id}"
                )
                self._inflight[item_id] = task
                task.add_done_callback(functools.partial(self._done, item_id))
            return len(claimed)

    def _done(self, item_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(item_id, None)
        self.wake()  # a slot is free, and the room's next item may now be claimable

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if self._inflight:
                try:
                    await self.renew(list(self._inflight))
                except StoreError as exc:
                    self.store_trouble(exc)
