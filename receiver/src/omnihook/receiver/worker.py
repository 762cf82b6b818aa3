"""The worker: takes stored events, runs the router on them, records the outcome.

Any number of workers (in the server process, in ``omnihook worker`` processes, on several
machines sharing a PostgreSQL store) can run at once: the store hands each event to one worker at
a time, under a lease, and only the oldest unfinished event of a room, so a room's events are
handled one by one in arrival order. A worker that dies leaves its leases to expire; another
worker then takes the events over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from omnihook.contracts import ContractError, parse_event
from omnihook.store import ClaimedEvent, Finish, Store, StoreError, backoff_delay

from .router import HandlerContext, Router
from .timeline import is_stale, position_of

__all__ = ["HandlingPolicy", "Worker"]

logger = logging.getLogger("omnihook.worker")


@dataclass(frozen=True)
class HandlingPolicy:
    """How the worker retries failed handling.

    A failed event is retried after ``initial_delay`` seconds, then ``backoff`` times longer each
    time (at most ``max_delay``, spread by ± ``jitter``), until ``attempts`` attempts were made or
    the event is older than ``max_age`` seconds; then it is dead-lettered with its history. A
    :class:`~omnihook.receiver.PermanentError` dead-letters at once. Each handler gets
    ``handler_timeout`` seconds per attempt (``None``: no limit).
    """

    attempts: int = 8
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2
    max_age: float = 24 * 3600.0
    handler_timeout: float | None = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")
        if self.backoff < 1:
            raise ValueError(f"backoff must be at least 1, got {self.backoff}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, got {self.jitter}")
        if self.max_age <= 0:
            raise ValueError(f"max_age must be positive, got {self.max_age}")
        if self.handler_timeout is not None and self.handler_timeout <= 0:
            raise ValueError(f"handler_timeout must be positive, got {self.handler_timeout}")

    def delay_before(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number ``retry`` (1 for the second attempt)."""
        return backoff_delay(
            self.initial_delay, self.backoff, retry, self.max_delay, self.jitter, rng
        )


class Worker:
    """Handles stored events with a router until stopped.

    ``concurrency`` events (of different rooms) are handled at once. ``clock`` gives Unix
    seconds; tests pass their own to move time without sleeping.
    """

    def __init__(
        self,
        store: Store,
        router: Router,
        *,
        policy: HandlingPolicy | None = None,
        concurrency: int = 8,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease <= 0:
            raise ValueError(f"lease must be positive, got {lease}")
        self.store = store
        self.router = router
        self.policy = policy or HandlingPolicy()
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._rng = rng or random.Random()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._claiming = asyncio.Lock()  # run() and drain() may both claim: never beyond the cap
        self._stopping = False
        self._store_down_since: float | None = None
        self.handled = 0
        """Attempts finished by this worker (any outcome)."""

    def wake(self) -> None:
        """Tell the worker new events may be waiting (saves waiting for the next poll)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and handle events until :meth:`stop` is called."""
        heartbeat = asyncio.create_task(self._renew_leases(), name="omnihook-worker-leases")
        try:
            while not self._stopping:
                claimed = await self._claim_some()
                if claimed and len(self._inflight) < self.concurrency:
                    continue  # there may be more work right away
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let events being handled finish for ``grace`` seconds, then give the
        rest back to the store (another worker will handle them)."""
        self._stopping = True
        self.wake()
        tasks = list(self._inflight.values())
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=grace)
            unfinished = [
                event_id for event_id, task in self._inflight.items() if task in still_running
            ]
            for task in still_running:
                task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)
            if unfinished:
                with contextlib.suppress(StoreError):
                    await self.store.events.release(self.name, unfinished)
                logger.info("released %d event(s) still being handled", len(unfinished))

    async def drain(self) -> int:
        """Handle everything that is due now, then return how many attempts were made (tests,
        scripts). Events whose retry is due later are left for later."""
        before = self.handled
        while True:
            claimed = await self._claim_some()
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()))
            elif not claimed:
                return self.handled - before

    async def _claim_some(self) -> int:
        async with self._claiming:
            return await self._claim_free_slots()

    async def _claim_free_slots(self) -> int:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        try:
            claimed = await self.store.events.claim(self.name, free, self.lease, self.clock())
        except StoreError as exc:
            self._store_trouble(exc)
            return 0
        self._store_back()
        for event in claimed:
            task = asyncio.create_task(self._handle(event), name=f"omnihook-event-{event.id}")
            self._inflight[event.id] = task
            task.add_done_callback(functools.partial(self._done, event.id))
        return len(claimed)

    def _done(self, event_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(event_id, None)
        self.wake()  # a slot is free, and the room's next event may now be claimable

    async def _handle(self, claimed: ClaimedEvent) -> None:
        started = self.clock()
        attempt = claimed.attempts + 1
        try:
            event = parse_event(claimed.body)
        except ContractError as exc:  # accepted by an older contract; retrying cannot help
            await self._finish(claimed, Finish("dead", started, self.clock(), error=str(exc)))
            return
        room = claimed.room
        stale = is_stale(
            event, room.stage if room else None, room.newest_message_at if room else None
        )
        context = HandlerContext(
            raw_body=claimed.body,
            received_at=datetime.fromtimestamp(claimed.received_at, UTC),
            stale=stale,
            attempt=attempt,
            event_id=claimed.id,
            dedup_key=claimed.dedup_key,
        )
        outcome = await self.router.run(
            event, context, skip=claimed.handlers_done, timeout=self.policy.handler_timeout
        )
        finished = self.clock()
        handlers_done = sorted(claimed.handlers_done | set(outcome.succeeded))
        error = "; ".join(str(failure) for failure in outcome.failures) or None
        next_attempt_at = None
        status: Literal["done", "failed", "dead"]
        if not outcome.failures:
            status = "done"
        elif outcome.permanent:
            status = "dead"
        elif attempt >= self.policy.attempts:
            status, error = "dead", f"gave up after {attempt} attempts: {error}"
        elif finished - claimed.received_at >= self.policy.max_age:
            status, error = "dead", f"gave up: older than {self.policy.max_age:g} s: {error}"
        else:
            status = "failed"
            next_attempt_at = finished + self.policy.delay_before(attempt, self._rng)
        position = position_of(event) if status != "failed" and not stale else None
        await self._finish(
            claimed,
            Finish(
                status=status,
                started_at=started,
                finished_at=finished,
                handlers_done=handlers_done,
                error=error,
                next_attempt_at=next_attempt_at,
                crm_data=outcome.crm_data,
                stage=position.stage if position else None,
                newest_message_at=position.newest_message_at if position else None,
                stale=stale,
            ),
        )
        if status == "dead":
            logger.warning("event %d (%s) dead-lettered: %s", claimed.id, event.type, error)
        elif status == "failed":
            logger.info("event %d (%s) will be retried: %s", claimed.id, event.type, error)

    async def _finish(self, claimed: ClaimedEvent, result: Finish) -> None:
        # The handlers ran; losing their outcome would run them again. Keep trying while the
        # lease lasts (the heartbeat renews it) unless the worker is being stopped.
        delay = 0.1
        while True:
            try:
                if not await self.store.events.finish(claimed, self.name, result):
                    logger.warning(
                        "event %d: lease lost before its outcome was saved; another worker has it",
                        claimed.id,
                    )
                self.handled += 1
                self._store_back()
                return
            except StoreError as exc:
                self._store_trouble(exc)
                if self._stopping:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.lease / 3)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if self._inflight:
                try:
                    await self.store.events.renew(
                        self.name, list(self._inflight), self.clock() + self.lease
                    )
                except StoreError as exc:
                    self._store_trouble(exc)

    def _store_trouble(self, exc: StoreError) -> None:
        if self._store_down_since is None:
            self._store_down_since = time.monotonic()
            logger.error("store unavailable, will keep trying: %s", exc)

    def _store_back(self) -> None:
        if self._store_down_since is not None:
            down_for = time.monotonic() - self._store_down_since
            self._store_down_since = None
            logger.warning("store reachable again after %.1f s", down_for)
