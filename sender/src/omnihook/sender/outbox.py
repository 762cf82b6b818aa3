"""The outbox dispatcher: delivers stored deliveries, one attempt at a time, retries persisted.

Rocket.Chat keeps its retries in timers, lost on restart. Here each attempt's outcome and the
next attempt's due time are committed, so a restarted sender resumes every retry at its due time;
a delivery held by a dispatcher that died is taken over when its lease expires (the receiver's
dedup makes that repeat harmless). At most ``concurrency`` deliveries are in flight, and only the
oldest unfinished delivery of a room is, so each room's events arrive in order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Literal

from omnihook.contracts import encode_json
from omnihook.store import OutboxAttempt, OutboxEntry, Store, StoreError
from omnihook.store.claims import ClaimLoop

from .sender import Sender, maybe_await

__all__ = ["OutboxDispatcher", "with_crm_data"]

logger = logging.getLogger("omnihook.sender")


class OutboxDispatcher(ClaimLoop[OutboxEntry]):
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
        # A lease must outlive the attempt it covers: the request's timeout plus time to record it.
        lease = lease if lease is not None else max(30.0, 3 * sender.timeout)
        if lease <= sender.timeout:
            raise ValueError(f"the outbox lease ({lease} s) must be longer than the timeout")
        super().__init__(
            concurrency=concurrency,
            lease=lease,
            poll_interval=poll_interval,
            name=name,
            logger=logger,
            noun="delivery",
        )
        self.sender = sender
        self.store = store
        self.echo_crm_data = echo_crm_data

    async def drain(self) -> None:
        """Deliver until the outbox holds nothing unfinished, waiting (on the sender's clock)
        for retries that are due later."""
        while True:
            await self.handle_due()
            try:
                next_due = await self.store.outbox.next_due()
            except StoreError as exc:
                self.store_trouble(exc)
                await self.sender.clock.sleep(self.poll_interval)
                continue
            if next_due is None:
                return
            await self.sender.clock.sleep(max(0.0, next_due - self.sender.clock.time()))

    async def idle_wait(self) -> float:
        try:
            next_due = await self.store.outbox.next_due()
        except StoreError as exc:
            self.store_trouble(exc)
            return self.poll_interval
        if next_due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, next_due - self.sender.clock.time()))

    async def claim(self, limit: int) -> list[OutboxEntry]:
        await self.store.connect()
        return await self.store.outbox.claim(self.name, limit, self.lease, self.sender.clock.time())

    def item_id(self, item: OutboxEntry) -> int:
        return item.id

    async def renew(self, ids: list[int]) -> None:
        await self.store.outbox.renew(self.name, ids, self.sender.clock.time() + self.lease)

    async def release(self, ids: list[int]) -> None:
        await self.store.outbox.release(self.name, ids)

    async def handle(self, entry: OutboxEntry) -> None:
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
        recorded = await self.persist(
            lambda: self.store.outbox.record(
                entry, self.name, attempt, status, next_attempt_at, outcome.response_text
            )
        )
        if not recorded:
            if recorded is False:
                logger.warning("delivery %d: lease lost before its attempt was recorded", entry.id)
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
            self.store_trouble(exc)
            return entry.body


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
