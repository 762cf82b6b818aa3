"""Alerts: a message to a Rocket.Chat room, a Slack-compatible or a plain webhook when the bridge
needs a person, and one when it no longer does.

Conditions, read from the store (so right across processes) by whichever process holds the
``alerts`` lock:

=================  ===================================================================
condition          fires while
=================  ===================================================================
dead_letters       there are dead events (the message says how many are new)
crm_failing        a CRM adapter's circuit has been open for ``crm_failing_after``
handling_delay     the oldest unhandled event has waited over ``handling_delay``
reconcile_gaps     the last reconcile found gaps (or failed)
=================  ===================================================================

Debounced: a firing condition is sent once, then again at most once per ``every`` while it
lasts; when it clears, one "resolved" message.

>>> loop = AlertLoop(store, [WebhookTarget("https://ops.example/hook")], AlertRules())  # doctest: +SKIP
>>> await loop.run(stop)                                                                # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from omnihook.store import Store, StoreError, register_secret

from .status import CIRCUIT_PREFIX, BridgeStatus, read_status

__all__ = [
    "CONDITIONS",
    "Alert",
    "AlertLoop",
    "AlertRules",
    "AlertTarget",
    "RocketChatTarget",
    "SlackTarget",
    "WebhookTarget",
    "evaluate",
]

logger = logging.getLogger("omnihook.alerts")

CONDITIONS = ("dead_letters", "crm_failing", "handling_delay", "reconcile_gaps")
LOCK_NAME = "alerts"


@dataclass(frozen=True)
class AlertRules:
    """Which conditions to watch and their thresholds (seconds)."""

    on: frozenset[str] = frozenset(CONDITIONS)
    crm_failing_after: float = 600.0
    handling_delay: float = 300.0
    every: float = 3600.0
    """At most one message per condition per this many seconds while it lasts."""

    def __post_init__(self) -> None:
        unknown = set(self.on) - set(CONDITIONS)
        if unknown:
            raise ValueError(
                f"unknown alert condition(s) {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(CONDITIONS)}"
            )
        if min(self.crm_failing_after, self.handling_delay) < 0 or self.every <= 0:
            raise ValueError("alert thresholds must not be negative, every must be positive")


@dataclass(frozen=True)
class Alert:
    """One message: a condition (``key``: ``crm_failing:hubspot``) firing or resolved."""

    key: str
    state: Literal["firing", "resolved"]
    summary: str
    at: float
    details: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        mark = "RESOLVED" if self.state == "resolved" else "ALERT"
        return f"[omnihook {mark}] {self.summary}"

    def document(self) -> dict[str, Any]:
        when = datetime.fromtimestamp(self.at, UTC).isoformat().replace("+00:00", "Z")
        return {"alert": self.key, "state": self.state, "summary": self.summary, "at": when,
                "details": self.details}  # fmt: skip


def evaluate(status: BridgeStatus, rules: AlertRules) -> dict[str, tuple[str, dict[str, Any]]]:
    """The conditions firing now: ``{key: (summary, details)}``."""
    firing: dict[str, tuple[str, dict[str, Any]]] = {}
    if status.store_problem is not None:
        # Nothing else can be read; the store's trouble is what a person must see.
        return {"store": (f"the store cannot be written: {status.store_problem}", {})}
    events = status.events
    if "dead_letters" in rules.on and events is not None and events.counts.get("dead", 0):
        dead = events.counts["dead"]
        firing["dead_letters"] = (f"{dead} dead event(s): `omnihook events list --status dead`, "
                                  "then `omnihook events replay`", {"dead": dead})  # fmt: skip
    if "handling_delay" in rules.on and events is not None:
        age = events.oldest_age(status.now)
        if age > rules.handling_delay:
            firing["handling_delay"] = (
                f"the oldest unhandled event has waited {age:.0f} s (over "
                f"{rules.handling_delay:g} s): are the workers running?",
                {"oldest_age_seconds": round(age, 1)},
            )
    if "crm_failing" in rules.on:
        for circuit in status.circuits:
            value = circuit.value
            opened = value.get("opened_at")
            if value.get("state") == "closed" or not isinstance(opened, int | float):
                continue
            if status.now - opened >= rules.crm_failing_after:
                adapter = circuit.name.removeprefix(CIRCUIT_PREFIX)
                firing[f"crm_failing:{adapter}"] = (
                    f"CRM adapter {adapter} has been failing for {(status.now - opened) / 60:.0f} "
                    f"min (circuit open; last error: {value.get('reason')}); its events wait",
                    {"adapter": adapter, "since": opened},
                )
    last = status.reconcile
    if "reconcile_gaps" in rules.on and last is not None:
        value = last.value
        if value.get("outcome") == "failed":
            firing["reconcile_gaps"] = (f"reconcile failed: {value.get('error')}", dict(value))
        elif value.get("gaps"):
            firing["reconcile_gaps"] = (
                f"reconcile found {value['gaps']} event(s) Rocket.Chat sent that never arrived; "
                f"rebuilt {value.get('rebuilt', 0)}",
                dict(value),
            )
    return firing


class AlertTarget(Protocol):
    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise on failure (the loop logs it and tries again later)."""


class _HttpTarget:
    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def body(self, alert: Alert) -> dict[str, Any]:
        return alert.document()

    async def send(self, alert: Alert) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, json=self.body(alert))
        if response.status_code >= 300:
            raise RuntimeError(
                f"{self.name} answered {response.status_code}: {response.text[:200]}"
            )


class WebhookTarget(_HttpTarget):
    """``POST`` the alert as JSON: ``{alert, state, summary, at, details}``."""

    name = "webhook"


class SlackTarget(_HttpTarget):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat's own): ``{"text": …}``."""

    name = "slack"

    def body(self, alert: Alert) -> dict[str, Any]:
        return {"text": alert.text()}


class RocketChatTarget:
    """A message in a Rocket.Chat room through the REST client (the bot of replies and reconcile)."""

    name = "rocketchat"

    def __init__(self, api: Any, room_id: str) -> None:
        self.api = api
        self.room_id = room_id

    async def send(self, alert: Alert) -> None:
        await self.api.send_message(self.room_id, alert.text())


@dataclass
class _Sent:
    last_sent: float
    summary: str


class AlertLoop:
    """Checks the conditions every ``check_every`` seconds and sends what changed: to each of
    ``targets`` by ``rules``, or by each target's own rules (``routes``)."""

    def __init__(
        self,
        store: Store,
        targets: Sequence[AlertTarget] = (),
        rules: AlertRules | None = None,
        *,
        routes: Sequence[tuple[AlertTarget, AlertRules]] = (),
        check_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.routes = [*((target, rules or AlertRules()) for target in targets), *routes]
        self.check_every = check_every
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.active: dict[tuple[int, str], _Sent] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set (a background job of ``serve`` and ``worker``)."""
        while not stop.is_set():
            try:
                await self.once()
            except Exception:  # a bug must not end alerting for the process's life
                logger.exception("alerts: a check failed; the next one tries again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.check_every)
        with contextlib.suppress(StoreError):
            await self.store.locks.release(LOCK_NAME, self.owner)

    async def once(self) -> list[Alert]:
        """One check (if this process holds the lock): the alerts it sent."""
        now = self.clock()
        try:
            held = await self.store.locks.hold(
                LOCK_NAME, self.owner, now + 3 * self.check_every, now
            )
        except StoreError as exc:
            status = BridgeStatus(now, str(exc))  # the store itself is the alert
        else:
            if not held:
                self.active.clear()  # another process alerts; take over cleanly if it stops
                return []
            status = await read_status(self.store, now)
        sent: list[Alert] = []
        for index, (target, rules) in enumerate(self.routes):
            for alert in self._changes(index, evaluate(status, rules), rules, now):
                await self._send(target, alert)
                sent.append(alert)
        return sent

    def _changes(
        self,
        index: int,
        firing: dict[str, tuple[str, dict[str, Any]]],
        rules: AlertRules,
        now: float,
    ) -> list[Alert]:
        alerts = []
        for key, (summary, details) in firing.items():
            sent = self.active.get((index, key))
            if sent is None or now - sent.last_sent >= rules.every:
                alerts.append(Alert(key, "firing", summary, now, details))
                self.active[(index, key)] = _Sent(now, summary)
        for route, key in [k for k in self.active if k[0] == index and k[1] not in firing]:
            sent = self.active.pop((route, key))
            alerts.append(Alert(key, "resolved", f"resolved: {sent.summary}", now))
        return alerts

    async def _send(self, target: AlertTarget, alert: Alert) -> None:
        logger.warning("alert %s %s: %s", alert.key, alert.state, alert.summary)
        try:
            await target.send(alert)
        except Exception as exc:  # one target down must not silence the others
            logger.error("alerts: %s could not be sent to %s: %s", alert.key, target.name, exc)


def target_from(kind: str, *, url: str | None, room_id: str | None, api: Any) -> AlertTarget:
    """A target from a bridge file's ``[[alerts]]`` block."""
    if kind == "rocketchat":
        if api is None or not room_id:
            raise ValueError("a rocketchat alert needs room_id and a [rocketchat] block")
        return RocketChatTarget(api, room_id)
    if not url:
        raise ValueError(f"a {kind} alert needs url_env (the variable holding its URL)")
    register_secret(url)  # webhook URLs carry their own secrets
    return SlackTarget(url) if kind == "slack" else WebhookTarget(url)
