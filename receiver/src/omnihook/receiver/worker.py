"""The worker: takes stored events, runs the router on them, records the outcome.

Any number of workers (in the server process, in ``omnihook worker`` processes, on several
machines sharing a PostgreSQL store) can run at once: the store hands each event to one worker at
a time, under a lease, and only the oldest unfinished event of a room, so a room's events are
handled one by one in arrival order. A worker that dies leaves its leases to expire; another
worker then takes the events over.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from omnihook.contracts import AnyEvent, ContractError, parse_event
from omnihook.store import ClaimedEvent, Finish, Store, StoreError, backoff_delay
from omnihook.store.claims import ClaimLoop

from .ops import tracing
from .ops.breaker import CIRCUITS
from .ops.metrics import METRICS
from .ops.tracing import TRACING
from .router import DispatchOutcome, HandlerContext, Replier, RetryAfter, Router
from .timeline import is_stale, position_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["DEFAULT_CONCURRENCY", "PARSED_KEPT", "HandlingPolicy", "Worker"]

DEFAULT_CONCURRENCY = 32
"""Events a :class:`Worker` handles at once (of different rooms), unless told otherwise. Outcomes
and SQL CRM records of events in flight share commits, so more in flight is cheaper per event:
one ``omnihook serve`` on SQLite held 500 events/s with a p99 of 17 to 21 ms at 32 (four 30 to
60 s runs), and 11 to 156 ms at 8, where a backlog, once formed, drained slowly."""

PARSED_KEPT = 4096
"""How many events parsed by the request path a :class:`Worker` keeps for their first attempt."""

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


class Worker(ClaimLoop[ClaimedEvent]):
    """Handles stored events with a router until stopped.

    ``concurrency`` events (of different rooms) are handled at once. ``clock`` gives Unix
    seconds; tests pass their own to move time without sleeping. ``watch_store=False`` leaves
    out the watch on the store (see :meth:`run`): a server's own worker is woken by its accepts.
    """

    def __init__(
        self,
        store: Store,
        router: Router,
        *,
        policy: HandlingPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        name: str | None = None,
        rocketchat: Replier | None = None,
        watch_store: bool = True,
    ) -> None:
        super().__init__(
            concurrency=concurrency,
            lease=lease,
            poll_interval=poll_interval,
            name=name,
            logger=logger,
            noun="event",
        )
        self.store = store
        self.router = router
        self.policy = policy or HandlingPolicy()
        self.clock = clock
        self.rocketchat = rocketchat
        self.watch_store = watch_store
        self._rng = rng or random.Random()
        # Events the request path of this process parsed, by id, for their first attempt here:
        # parsing a 50-message close again costs as much as accepting it did.
        self._parsed: dict[int, tuple[str, AnyEvent]] = {}
        self.handled = 0
        """Attempts finished by this worker (any outcome)."""
        TRACING.refresh()

    def accepted(self, event_id: int, dedup_key: str, event: AnyEvent) -> None:
        """An event this process just stored (``event_id``, ``dedup_key``), parsed from its body:
        the first attempt here uses it instead of parsing the body again; and :meth:`wake`. The
        newest :data:`PARSED_KEPT` are kept (others, say those another process handles, are
        forgotten)."""
        parsed = self._parsed
        parsed[event_id] = (dedup_key, event)
        if len(parsed) > PARSED_KEPT:
            del parsed[next(iter(parsed))]
        self.wake()

    async def run(self) -> None:
        """Claim and handle until :meth:`stop`. With ``watch_store``, a watch on the store wakes
        the worker as soon as another process stores an event (PostgreSQL's NOTIFY, SQLite's
        commit counter), so a worker beside ``serve --no-worker`` does not wait for its next
        poll."""
        watching = (
            self.store.events.watch(self._stored_elsewhere)
            if self.watch_store
            else contextlib.nullcontext()
        )
        async with watching:
            await super().run()

    def _stored_elsewhere(self) -> None:
        # Only when a claim would run: with fewer free slots than a claim batch, the worker
        # claims again as events finish, and a wake per notification would be wasted work.
        if self.concurrency - len(self._inflight) >= self.claim_batch:
            self.wake()

    async def drain(self) -> int:
        """Handle everything that is due now, then return how many attempts were made (tests,
        scripts). Events whose retry is due later are left for later."""
        before = self.handled
        await self.handle_due()
        return self.handled - before

    async def claim(self, limit: int) -> list[ClaimedEvent]:
        await self.store.connect()
        return await self.store.events.claim(self.name, limit, self.lease, self.clock())

    def item_id(self, item: ClaimedEvent) -> int:
        return item.id

    async def renew(self, ids: list[int]) -> None:
        await self.store.events.renew(self.name, ids, self.clock() + self.lease)

    async def release(self, ids: list[int]) -> None:
        await self.store.events.release(self.name, ids)

    async def handle(self, claimed: ClaimedEvent) -> None:
        if TRACING.on:  # the trace the request stored with the event goes on
            with tracing.handling_span(claimed, self.name) as span:
                await self._handle(claimed, span)
        else:
            await self._handle(claimed, None)

    async def _handle(self, claimed: ClaimedEvent, span: Span | None) -> None:
        started = self.clock()
        attempt = claimed.attempts + 1
        # A retry parses again: handlers of the first attempt may have changed the model.
        kept = self._parsed.pop(claimed.id, None)
        try:
            if kept is not None and kept[0] == claimed.dedup_key and attempt == 1:
                event = kept[1]
            else:
                event = parse_event(claimed.body)
        except ContractError as exc:  # accepted by an older contract; retrying cannot help
            if span is not None:
                tracing.handling_outcome(span, "dead", str(exc))
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
            room_id=claimed.room_id,
            source=claimed.source,
            replier=self.rocketchat,
        )
        outcome = await self.router.run(
            event, context, skip=claimed.handlers_done, timeout=self.policy.handler_timeout,
            watch=None if span is None else tracing.handler_span,
        )  # fmt: skip
        finished = self.clock()
        handlers_done = sorted(claimed.handlers_done | set(outcome.succeeded))
        error = "; ".join(str(failure) for failure in outcome.failures) or None
        next_attempt_at = None
        deferred = False
        spent = attempt - claimed.deferrals  # the attempts that count against the policy
        status: Literal["done", "failed", "dead"]
        if not outcome.failures:
            status = "done"
        elif outcome.permanent:
            status = "dead"
        elif (
            outcome.retry_after is not None and finished - claimed.received_at < self.policy.max_age
        ):
            # A rate limit or an open circuit: not the handler failing, so it does not use up
            # the attempts.
            status, deferred = "failed", True
            next_attempt_at = finished + max(
                outcome.retry_after, self.policy.delay_before(1, self._rng)
            )
        elif spent >= self.policy.attempts:
            status, error = "dead", f"gave up after {spent} attempts: {error}"
        elif finished - claimed.received_at >= self.policy.max_age:
            status, error = "dead", f"gave up: older than {self.policy.max_age:g} s: {error}"
        else:
            status = "failed"
            next_attempt_at = finished + self.policy.delay_before(spent, self._rng)
        if span is not None:
            tracing.handling_outcome(span, status, error, stale=stale)
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
                deferred=deferred,
            ),
        )
        _count(event.type, outcome, status, finished - claimed.received_at)
        await self._publish_circuits()
        ids = {"event_id": claimed.id, "room_id": claimed.room_id, "event_type": event.type,
               "attempt": attempt, "duration": finished - started}  # fmt: skip
        if status == "dead":
            logger.warning(
                "event %d (%s) dead-lettered: %s", claimed.id, event.type, error, extra=ids
            )
        elif status == "failed":
            logger.info(
                "event %d (%s) will be retried: %s", claimed.id, event.type, error, extra=ids
            )

    async def _publish_circuits(self) -> None:
        """Tell the store about CRM circuits that opened or closed (``omnihook status``)."""
        try:
            await CIRCUITS.publish(self.store, time.time())
        except StoreError as exc:  # the next change publishes again; handling goes on
            logger.warning("could not record a CRM circuit's state: %s", exc)

    async def _finish(self, claimed: ClaimedEvent, result: Finish) -> None:
        # The handlers ran: losing their outcome would run them again.
        started = time.perf_counter()
        saved = await self.persist(lambda: self.store.events.finish(claimed, self.name, result))
        METRICS.commit_finish.observe(time.perf_counter() - started)
        if saved is False:
            logger.warning(
                "event %d: lease lost before its outcome was saved; another worker has it",
                claimed.id,
            )
        if saved is not None:
            self.handled += 1


def _count(event_type: str, outcome: DispatchOutcome, status: str, waited: float) -> None:
    """Each handler's outcome (a failure: retried or dead, as its event), and the delay from
    receipt to done."""
    for name in outcome.succeeded:
        METRICS.handling.labels(handler=name, outcome="done").inc()
    failed = "dead" if status == "dead" else "retried"
    for failure in outcome.failures:
        # A rate limit or an open circuit: the handler waits, it did not fail.
        waits = isinstance(failure.error, RetryAfter) and status != "dead"
        METRICS.handling.labels(
            handler=failure.handler, outcome="deferred" if waits else failed
        ).inc()
    if status == "done":
        METRICS.handling_delay.labels(type=event_type).observe(max(0.0, waited))
