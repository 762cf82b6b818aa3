"""A circuit breaker per CRM adapter: a CRM that keeps failing is left alone for a while.

After ``failures`` transient failures in a row (timeouts, unreachable, 5xx), the adapter's
circuit opens: its events wait, without using up attempts and without being dead-lettered (the
handler raises :class:`CircuitOpen`, a :class:`~omnihook.receiver.RetryAfter`), while one probe
at a time tries the CRM again after ``probe_after`` seconds, then twice as long, up to
``max_probe_after``. The first success closes it. Other adapters keep going. An answer from the
CRM, even a refusal (a validation error), proves it up and counts as a success here.

>>> breaker = CircuitBreaker("hubspot", CircuitPolicy(failures=3))
>>> breaker.check() is None          # closed: call the CRM
True

Every change is counted in ``omnihook_crm_circuit_open`` and kept on :data:`CIRCUITS`, which the
worker publishes to the store (``omnihook status`` and alerts read it from there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from omnihook.store import Store

from ..router import RetryAfter
from .metrics import METRICS
from .status import CIRCUIT_PREFIX

__all__ = ["CIRCUITS", "CircuitBoard", "CircuitBreaker", "CircuitOpen", "CircuitPolicy"]

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitPolicy:
    """When a circuit opens and how it probes. ``failures=0`` turns the breaker off."""

    failures: int = 5
    probe_after: float = 30.0
    max_probe_after: float = 600.0
    backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.failures < 0 or self.probe_after <= 0 or self.max_probe_after < self.probe_after:
            raise ValueError(
                "circuit: failures must be >= 0 and 0 < probe_after <= max_probe_after"
            )
        if self.backoff < 1:
            raise ValueError(f"circuit: backoff must be >= 1, got {self.backoff:g}")


class CircuitOpen(RetryAfter):
    """The adapter's circuit is open: its events wait for the next probe (no attempt used)."""


@dataclass
class CircuitBreaker:
    """One adapter's circuit. ``clock``: seconds, monotonic (tests inject their own)."""

    adapter: str
    policy: CircuitPolicy = field(default_factory=CircuitPolicy)
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = "closed"
    failures_in_a_row: int = 0
    probe_at: float = 0.0
    """When the next probe may run (open)."""
    wait: float = 0.0
    """The current pause between probes."""
    reason: str = ""
    """The last failure that counted."""
    opened_at: float | None = None
    """When it opened (Unix time; ``None`` while closed): alerts tell how long it has failed."""

    def __post_init__(self) -> None:
        CIRCUITS.track(self)

    def check(self) -> float | None:
        """``None``: call the CRM (closed, or the probe is due: this call is it); else the
        seconds until the next probe."""
        if self.state == "closed" or self.policy.failures == 0:
            return None
        now = self.clock()
        if self.state == "open" and now >= self.probe_at:
            self._set("half_open")
            return None
        # Open and not due, or a probe under way: wait for it (at least a moment).
        return max(self.probe_at - now, 1.0)

    def succeeded(self) -> None:
        self.failures_in_a_row = 0
        self.wait = 0.0
        if self.state != "closed":
            self.opened_at = None
            self._set("closed")

    def failed(self, reason: str) -> None:
        """A transient failure (the CRM did not answer, or failed on its side)."""
        if self.policy.failures == 0:
            return
        self.failures_in_a_row += 1
        self.reason = reason
        if self.state == "half_open" or self.failures_in_a_row >= self.policy.failures:
            policy = self.policy
            self.wait = (min(self.wait * policy.backoff, policy.max_probe_after)
                         if self.wait else policy.probe_after)  # fmt: skip
            self.probe_at = self.clock() + self.wait
            if self.opened_at is None:
                self.opened_at = time.time()
            self._set("open")

    def raise_if_open(self) -> None:
        """Raise :class:`CircuitOpen` unless the CRM may be called now."""
        wait = self.check()
        if wait is not None:
            raise CircuitOpen(
                wait,
                f"{self.adapter}: circuit open after {self.failures_in_a_row} failure(s) in a "
                f"row ({self.reason}); next probe in {wait:.0f} s",
            )

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "failures_in_a_row": self.failures_in_a_row,
                "reason": self.reason, "opened_at": self.opened_at,
                "next_probe_in": round(max(0.0, self.probe_at - self.clock()), 1)
                if self.state != "closed" else None}  # fmt: skip

    def _set(self, state: CircuitState) -> None:
        self.state = state
        METRICS.crm_circuit_open.labels(adapter=self.adapter).set(0 if state == "closed" else 1)
        CIRCUITS.changed(self)


class CircuitBoard:
    """This process's circuits, and which changed since they were last published."""

    def __init__(self) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}
        self._changed: dict[str, CircuitBreaker] = {}

    def track(self, breaker: CircuitBreaker) -> None:
        self.breakers[breaker.adapter] = breaker
        METRICS.crm_circuit_open.labels(adapter=breaker.adapter).set(0)

    def changed(self, breaker: CircuitBreaker) -> None:
        self._changed[breaker.adapter] = breaker

    def open(self) -> list[CircuitBreaker]:
        return [b for b in self.breakers.values() if b.state != "closed"]

    async def publish(self, store: Store, now: float) -> None:
        """Write the circuits that changed to the store's shared state (``circuit:<adapter>``)."""
        changed, self._changed = self._changed, {}
        for adapter, breaker in changed.items():
            await store.state.put(f"{CIRCUIT_PREFIX}{adapter}", breaker.describe(), now)


CIRCUITS = CircuitBoard()
"""This process's circuits."""
