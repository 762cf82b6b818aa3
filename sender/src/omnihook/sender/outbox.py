"""The outbox dispatcher: delivers stored deliveries, one attempt at a time, retries persisted.

Rocket.Chat keeps its retries in timers, lost on restart. Here each attempt's outcome and the
next attempt's due time are committed, so a restarted sender resumes every retry at its due time;
a delivery held by a dispatcher that died is taken over when its lease expires (the receiver's
dedup makes that repeat harmless). At most ``concurrency`` deliveries are in flight, and only the
oldest unfinished delivery of a room is, so each room's events arrive in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import time
from dataclasses import replace
from typing import Any, Literal

from omnihook.contracts import encode_json
from omnihook.store import OutboxAttempt, OutboxEntry, Store, StoreError

from .sender import Sender, maybe_await

__all__ = ["OutboxDispatcher", "with_crm_data"]

logger = logging.getLogger("omnihook.sender")


class OutboxDispatcher:
    """Delivers a sender's outbox until stopped (:meth:`run`) or empty (:meth:`drain`)."""

    def __init__(
        self,
        sender: Sender,
        store: Store,
        *,
        concurrency: int = 64,
        poll_interval: float = 0.5,
        echo_crm_data: bool = False,
        lease: float | None = None,
        name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.sender = sender
        self.store = store
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.echo_crm_data = echo_crm_data
        # A lease must outlive the attempt it covers: the request's timeout plus time to record it.
        self.lease = lease if lease is not None else max(30.0, 3 * sender.timeout)
        if self.lease <= sender.timeout:
            raise ValueError(f"the outbox lease ({self.lease} s) must be longer than the timeout")
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._claiming = asyncio.Lock()  # run() and drain() may both claim: never beyond the cap
        self._stopping = False
        self._store_down_since: float | None = None

    def wake(self) -> None:
        """New deliveries may be waiting."""
        self._wakeup.set()

    async def run(self) -> None:
        """Deliver until :meth:`stop`; waits for due retries in between."""
        heartbeat = asyncio.create_task(self._renew_leases(), name="omnihook-outbox-leases")
        try:
            while not self._stopping:
                claimed = await self._claim_some()
                if claimed and len(self._inflight) < self.concurrency:
                    continue
                self._wakeup.clear()
                # A real wait even under a test's fake clock: only drain() jumps in time, so two
                # loops never both move a fake clock forward.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), await self._time_to_next_due())
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def drain(self) -> None:
        """Deliver until the outbox holds nothing unfinished, waiting (on the sender's clock)
        for retries that are due later."""
        while True:
            claimed = await self._claim_some()
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()))
                continue
            if claimed:
                continue
            try:
                next_due = await self.store.outbox.next_due()
            except StoreError as exc:
                self._store_trouble(exc)
                await self.sender.clock.sleep(self.poll_interval)
                continue
            if next_due is None:
                return
            await self.sender.clock.sleep(max(0.0, next_due - self.sender.clock.time()))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let attempts in flight end for ``grace`` seconds, hand back the rest."""
        self._stopping = True
        self.wake()
        tasks = list(self._inflight.values())
        if not tasks:
            return
        _, still_running = await asyncio.wait(tasks, timeout=grace)
        unfinished = [
            entry_id for entry_id, task in self._inflight.items() if task in still_running
        ]
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        if unfinished:
            with contextlib.suppress(StoreError):
                await self.store.outbox.release(self.name, unfinished)

    async def _time_to_next_due(self) -> float:
        if self._inflight:
            return self.poll_interval
        try:
            next_due = await self.store.outbox.next_due()
        except StoreError as exc:
            self._store_trouble(exc)
            return self.poll_interval
        if next_due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, next_due - self.sender.clock.time()))

    async def _claim_some(self) -> int:
        async with self._claiming:
            return await self._claim_free_slots()

    async def _claim_free_slots(self) -> int:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        try:
            await self.store.connect()
            claimed = await self.store.outbox.claim(
                self.name, free, self.lease, self.sender.clock.time()
            )
        except StoreError as exc:
            self._store_trouble(exc)
            return 0
        self._store_back()
        for entry in claimed:
            task = asyncio.create_task(self._deliver(entry), name=f"omnihook-outbox-{entry.id}")
            self._inflight[entry.id] = task
            task.add_done_callback(functools.partial(self._done, entry.id))
        return len(claimed)

    def _done(self, entry_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(entry_id, None)
        self.wake()

    async def _deliver(self, entry: OutboxEntry) -> None:
        sender = self.sender
        body = entry.body
        if self.echo_crm_data and entry.attempts == 0 and entry.room_id is not None:
            body = await self._with_latest_crm_data(entry)
        started_at = sender.clock.time()
        outcome = await sender.post_once(body)
        number = entry.attempts + 1
        policy = sender.policy
        status: Literal["done", "failed", "dead"]
        retry_in = None
        if outcome.ok:
            status = "done"
        elif number < policy.attempts and policy.should_retry(outcome.status):
            status = "failed"
            retry_in = policy.wait_before(number, sender.timeout, sender.rng)
        else:
            status = "dead"
        next_attempt_at = sender.clock.time() + (retry_in or 0.0)
        attempt = OutboxAttempt(number, started_at, outcome.elapsed, outcome.status, outcome.error)
        recorded = await self._record(
            entry, attempt, status, next_attempt_at, outcome.response_text
        )
        if not recorded:
            return
        if sender.on_attempt is not None:
            await maybe_await(sender.on_attempt(replace(outcome, number=number, retry_in=retry_in)))
        if status == "done" and entry.room_id is not None and sender.on_response is not None:
            await maybe_await(sender.on_response(entry.room_id, outcome.response_text or ""))
        if status == "dead":
            logger.warning(
                "delivery %d dead after %d attempt(s): %s", entry.id, number, outcome.error
            )

    async def _with_latest_crm_data(self, entry: OutboxEntry) -> bytes:
        # As Rocket.Chat does, the room's last 200 body rides along as crmData. It is set once,
        # before the first attempt, so that every retry sends the very same bytes (dedup).
        assert entry.room_id is not None
        try:
            crm_data = await self.store.outbox.crm_data(entry.url, entry.room_id)
            if crm_data is None:
                return entry.body
            body = with_crm_data(entry.body, crm_data)
            if body != entry.body:
                await self.store.outbox.set_body(entry.id, self.name, body)
            return body
        except StoreError as exc:
            self._store_trouble(exc)
            return entry.body

    async def _record(
        self,
        entry: OutboxEntry,
        attempt: OutboxAttempt,
        status: Literal["done", "failed", "dead"],
        next_attempt_at: float,
        response_text: str | None,
    ) -> bool:
        delay = 0.1
        while True:
            try:
                recorded = await self.store.outbox.record(
                    entry, self.name, attempt, status, next_attempt_at, response_text
                )
                self._store_back()
                if not recorded:
                    logger.warning(
                        "delivery %d: lease lost before its attempt was recorded", entry.id
                    )
                return recorded
            except StoreError as exc:
                self._store_trouble(exc)
                if self._stopping:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.lease / 3)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if self._inflight:
                with contextlib.suppress(StoreError):
                    await self.store.outbox.renew(
                        self.name, list(self._inflight), self.sender.clock.time() + self.lease
                    )

    def _store_trouble(self, exc: StoreError) -> None:
        if self._store_down_since is None:
            self._store_down_since = time.monotonic()
            logger.error("outbox store unavailable, will keep trying: %s", exc)

    def _store_back(self) -> None:
        if self._store_down_since is not None:
            logger.warning(
                "outbox store reachable again after %.1f s",
                time.monotonic() - self._store_down_since,
            )
            self._store_down_since = None


def with_crm_data(body: bytes, crm_data: str) -> bytes:
    """The payload with ``crmData`` set, where Rocket.Chat puts it (before ``type``)."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict) or document.get("crmData") == crm_data:
        return body
    rebuilt: dict[str, Any] = {}
    for key, value in document.items():
        if key == "crmData":
            continue
        if key == "type" and "crmData" not in rebuilt:
            rebuilt["crmData"] = crm_data
        rebuilt[key] = value
    rebuilt.setdefault("crmData", crm_data)
    return encode_json(rebuilt)
