"""Prometheus metrics of the bridge: what it received, handled, sent to CRMs and still owes.

Every process keeps its own counters and histograms (this process's requests, handlings, CRM
calls) in :data:`METRICS`; the gauges of work left (pending, failed and dead events, the oldest
one's age, the outbox) are read from the store when scraped, so every process reports the same,
right, figure whichever wrote the rows. Scrape each process (``serve``, each ``worker``); sum
counters over instances, take ``max`` of the store gauges.

>>> from omnihook.receiver.ops.metrics import METRICS, exposition
>>> METRICS.events_accepted.labels(type="Message").inc()
>>> body, content_type = await exposition(store)          # doctest: +SKIP

Labels are bounded: never a room, visitor or message id; error codes, event types, handler and
adapter names come from the code, and a CRM call's operation is its method and URL path with
ids replaced by ``{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from omnihook.store import Store
from omnihook.store.outbox import DELIVERY_OUTCOMES

__all__ = ["METRICS", "Metrics", "crm_operation", "exposition", "serve_metrics"]

logger = logging.getLogger("omnihook.receiver")

# Seconds: from a fast local write to Rocket.Chat's 5 s timeout and beyond (retries, backlogs).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The bridge's metrics, in a registry of their own (nothing from other libraries)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._answers: dict[tuple[str, int, str], Counter] = {}
        self._events: dict[tuple[str, bool], Counter] = {}
        self.requests = Counter(
            "omnihook_http_requests", "HTTP requests answered, by route, status and error code.",
            ["route", "status", "error"], registry=registry,
        )  # fmt: skip
        self.events_accepted = Counter(
            "omnihook_events_accepted", "Deliveries accepted as new events, by event type.",
            ["type"], registry=registry,
        )  # fmt: skip
        self.events_duplicate = Counter(
            "omnihook_events_duplicates", "Deliveries answered as duplicates of a stored event.",
            ["type"], registry=registry,
        )  # fmt: skip
        self.handling = Counter(
            "omnihook_handling",
            "Handler runs by handler (CRM adapters: crm:<name>) and outcome: done, retried, "
            "deferred (a rate limit or an open circuit: no attempt used), dead.",
            ["handler", "outcome"], registry=registry,
        )  # fmt: skip
        self.handling_delay = Histogram(
            "omnihook_handling_delay_seconds",
            "From receipt of an event to the end of its handling (done), by event type.",
            ["type"], buckets=_DELAY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.crm_requests = Counter(
            "omnihook_crm_requests",
            "CRM API calls by adapter, operation and outcome (ok, client_error, rate_limited, "
            "server_error, timeout, unreachable).",
            ["adapter", "operation", "outcome"], registry=registry,
        )  # fmt: skip
        self.crm_latency = Histogram(
            "omnihook_crm_request_seconds", "CRM API call latency by adapter and operation.",
            ["adapter", "operation"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.crm_circuit_open = Gauge(
            "omnihook_crm_circuit_open",
            "1 while a CRM adapter's circuit is open in this process (its events wait), else 0.",
            ["adapter"], registry=registry,
        )  # fmt: skip
        self.store_commit = Histogram(
            "omnihook_store_commit_seconds",
            "Store writes until durable: accept (a delivery, batching included), finish (an "
            "outcome).",
            ["operation"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.commit_accept = self.store_commit.labels(operation="accept")
        self.commit_finish = self.store_commit.labels(operation="finish")
        self.reconcile_rounds = Counter(
            "omnihook_reconcile_rounds", "Reconcile runs by outcome (ok, incomplete, failed).",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.reconcile_gaps = Counter(
            "omnihook_reconcile_gaps", "Events Rocket.Chat sent that the store lacked, found.",
            registry=registry,
        )  # fmt: skip
        self.reconcile_rebuilt = Counter(
            "omnihook_reconcile_rebuilt", "Missing events rebuilt and stored by reconcile.",
            registry=registry,
        )  # fmt: skip
        self.reconcile_last_success = Gauge(
            "omnihook_reconcile_last_success_timestamp_seconds",
            "When this process last finished a reconcile run (Unix time).", registry=registry,
        )  # fmt: skip
        self.events = Gauge(
            "omnihook_events", "Events not done, by status (read from the store when scraped).",
            ["status"], registry=registry,
        )  # fmt: skip
        self.oldest_pending = Gauge(
            "omnihook_events_oldest_pending_age_seconds",
            "Age of the oldest event not yet handled (pending, processing or failed).",
            registry=registry,
        )  # fmt: skip
        self.outbox = Gauge(
            "omnihook_outbox", "Outbox deliveries not done, by status (read from the store).",
            ["status"], registry=registry,
        )  # fmt: skip
        self.outbox_oldest = Gauge(
            "omnihook_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox delivery not yet made.", registry=registry,
        )  # fmt: skip
        registry.register(_OutboxDeliveries())
        self.store_up = Gauge(
            "omnihook_store_up", "1 when the store answered the last scrape, else 0.",
            registry=registry,
        )  # fmt: skip

    def answered(self, route: str, status: int, body: bytes | memoryview) -> None:
        """Count one answer in ``omnihook_http_requests_total`` (a refusal by the error code
        its JSON body starts with). Label children are cached: this runs on every request."""
        error = ""
        if status >= 400:
            found = _ERROR_CODE.match(bytes(body[:64]))
            error = found.group(1).decode() if found else "other"
        key = (route, status, error)
        child = self._answers.get(key)
        if child is None:
            child = self._answers[key] = self.requests.labels(route, str(status), error)
        child.inc()

    def event(self, event_type: str, *, duplicate: bool) -> None:
        """Count one delivery accepted (or answered as a duplicate), by type."""
        key = (event_type, duplicate)
        child = self._events.get(key)
        if child is None:
            counter = self.events_duplicate if duplicate else self.events_accepted
            child = self._events[key] = counter.labels(type=event_type)
        child.inc()

    def names(self) -> set[str]:
        """Every series name these metrics expose, observed yet or not (a counter's ``_total``,
        a histogram's ``_bucket``, ``_sum`` and ``_count``): what dashboards and alerts may use."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                    "gauge": ("",)}  # fmt: skip
        return {family.name + suffix for family in self.registry.collect()
                for suffix in suffixes[family.type]}  # fmt: skip

    async def refresh(self, store: Store | None, now: float | None = None) -> None:
        """Read the store's backlog into the gauges (``omnihook_store_up`` 0 if it fails)."""
        if store is None:
            return
        now = time.time() if now is None else now
        try:
            await store.connect()
            events, outbox = await store.events.backlog(), await store.outbox.backlog()
        except Exception:
            self.store_up.set(0)
            return
        self.store_up.set(1)
        for status, count in events.counts.items():
            self.events.labels(status=status).set(count)
        self.oldest_pending.set(events.oldest_age(now))
        for status, count in outbox.counts.items():
            self.outbox.labels(status=status).set(count)
        self.outbox_oldest.set(outbox.oldest_age(now))


class _OutboxDeliveries(Collector):
    """``omnihook_outbox_deliveries_total``: what the outbox dispatchers of this process recorded
    (the store counts them; the sender does not depend on this part)."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "omnihook_outbox_deliveries",
            "Outbox delivery attempts made by this process's dispatchers, by outcome: done, "
            "failed (retried later), dead.",
            labels=["outcome"],
        )
        for outcome in ("done", "failed", "dead"):
            family.add_metric([outcome], DELIVERY_OUTCOMES[outcome])
        yield family


METRICS: Final = Metrics()
"""This process's metrics; the receiver's code counts into it."""


async def exposition(store: Store | None, metrics: Metrics = METRICS) -> tuple[bytes, str]:
    """The Prometheus text exposition (and its content type), store gauges read now. Format
    0.0.4, which every Prometheus (and compatible scraper) reads; the names need nothing newer."""
    await metrics.refresh(store)
    return generate_latest(metrics.registry), CONTENT_TYPE_PLAIN_0_0_4


async def serve_metrics(
    store: Store | None,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    every: float = 15.0,
    metrics: Metrics = METRICS,
) -> None:
    """Serve ``/metrics`` on a port of its own until ``stop`` is set (``--metrics-port``): a
    thread answers scrapes; the store gauges are read every ``every`` seconds meanwhile. No
    token there: bind it to an interface only Prometheus reaches."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    logger.info("metrics at http://%s:%d/metrics", host, server.server_port)
    try:
        while not stop.is_set():
            await metrics.refresh(store)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


_ERROR_CODE = re.compile(rb'^\{"error":"([a-z_]{1,40})"')
_ID_SEGMENT = re.compile(r"^(?:\d+|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]{7,})$")


def crm_operation(method: str, path: str) -> str:
    """A bounded label for a CRM call: ``POST /crm/v3/objects/notes/{id}``.

    A path segment that is a number, or a long token holding a digit (Salesforce's 18-character
    ids, Zoho's and HubSpot's numeric ones), is an id; version segments (``v60.0``) stay.

    >>> crm_operation("patch", "/crm/v3/objects/notes/51234567?x=1")
    'PATCH /crm/v3/objects/notes/{id}'
    """
    path = path.split("?", 1)[0]
    segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
    return f"{method.upper()} {'/'.join(segments)}"
