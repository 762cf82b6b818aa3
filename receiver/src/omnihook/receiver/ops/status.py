"""What an operator (or a health check) needs to know about a bridge, read from its store: can it
take deliveries, what is left to handle, what died, how the last reconcile went, which CRM
circuits are open. Right across processes: everything comes from the shared store.

>>> status = await read_status(store, time.time())           # doctest: +SKIP
>>> status.problems()                                          # doctest: +SKIP
['2 dead event(s): see `omnihook events list --status dead`']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnihook.store import Backlog, StateRecord, Store

__all__ = ["BridgeStatus", "StatusLimits", "read_status"]

CIRCUIT_PREFIX = "circuit:"
"""Shared-state names of the CRM circuits (``circuit:<adapter>``, written by the breaker)."""
RECONCILE_STATE = "reconcile"
"""The shared-state name of the last reconcile round (written by the reconcile loop)."""


@dataclass(frozen=True)
class StatusLimits:
    """When something needs attention (besides dead letters and a store that cannot write)."""

    max_pending_age: float = 300.0
    """Seconds the oldest unhandled event may wait."""
    max_reconcile_age: float | None = None
    """Seconds since the last reconcile run, when reconciling is expected (else not checked)."""


@dataclass(frozen=True)
class BridgeStatus:
    now: float
    store_problem: str | None
    events: Backlog | None = None
    outbox: Backlog | None = None
    reconcile: StateRecord | None = None
    circuits: tuple[StateRecord, ...] = field(default_factory=tuple)

    def problems(self, limits: StatusLimits | None = None) -> list[str]:
        """What needs attention, one line each (empty: all is well)."""
        limits = limits or StatusLimits()
        if self.store_problem is not None:
            return [f"store: {self.store_problem}"]
        found: list[str] = []
        if self.events is not None:
            dead = self.events.counts.get("dead", 0)
            if dead:
                found.append(f"{dead} dead event(s): see `omnihook events list --status dead`")
            age = self.events.oldest_age(self.now)
            if age > limits.max_pending_age:
                found.append(
                    f"the oldest unhandled event has waited {age:.0f} s (over "
                    f"{limits.max_pending_age:g} s): is a worker running?"
                )
        if self.outbox is not None and self.outbox.counts.get("dead", 0):
            found.append(f"{self.outbox.counts['dead']} dead outbox delivery(ies)")
        if self.reconcile is not None and self.reconcile.value.get("outcome") != "ok":
            value = self.reconcile.value
            found.append(
                f"the last reconcile was {value.get('outcome')}: "
                + str(value.get("error") or f"{value.get('skipped_rooms')} room(s) left out")
            )
        if limits.max_reconcile_age is not None:
            last = self.reconcile.updated_at if self.reconcile else None
            if last is None or self.now - last > limits.max_reconcile_age:
                found.append(
                    "no reconcile run within "
                    f"{limits.max_reconcile_age:g} s: is reconcile_every set on a running process?"
                )
        for circuit in self.circuits:
            if circuit.value.get("state") != "closed":
                found.append(
                    f"CRM adapter {circuit.name.removeprefix(CIRCUIT_PREFIX)}: circuit "
                    f"{circuit.value.get('state')} ({circuit.value.get('reason', 'failing')})"
                )
        return found

    def as_dict(self, limits: StatusLimits | None = None) -> dict[str, Any]:
        """The status as JSON-ready data (``omnihook status --json``)."""

        def backlog(found: Backlog | None) -> dict[str, Any] | None:
            if found is None:
                return None
            return {**found.counts, "oldest_age_seconds": round(found.oldest_age(self.now), 3)}

        problems = self.problems(limits)
        return {
            "ok": not problems,
            "problems": problems,
            "store": {"ok": self.store_problem is None, "problem": self.store_problem},
            "events": backlog(self.events),
            "outbox": backlog(self.outbox),
            "reconcile": (
                {**self.reconcile.value, "at": self.reconcile.updated_at}
                if self.reconcile
                else None
            ),
            "circuits": {
                c.name.removeprefix(CIRCUIT_PREFIX): {**c.value, "at": c.updated_at}
                for c in self.circuits
            },
        }


async def read_status(store: Store, now: float) -> BridgeStatus:
    """The bridge's status from ``store``: first whether it can be written at all."""
    try:
        await store.connect()
        await store.check_writable()
    except Exception as exc:  # whatever it is, the operator is told, not a traceback
        return BridgeStatus(now, f"{type(exc).__name__}: {exc}")
    return BridgeStatus(
        now,
        None,
        events=await store.events.backlog(),
        outbox=await store.outbox.backlog(),
        reconcile=await store.state.get(RECONCILE_STATE),
        circuits=tuple(await store.state.find(CIRCUIT_PREFIX)),
    )
