"""Prometheus metrics: what a chat's deliveries, duplicates, refusals and handlings count, the
store's backlog as gauges, CRM calls by operation and outcome, and /metrics behind its token."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from omnihook.contracts import EventType, samples
from omnihook.receiver import (
    TOKEN_HEADER,
    HandlerContext,
    HandlingPolicy,
    Router,
    Worker,
    create_app,
)
from omnihook.receiver.crm import HubSpotAdapter
from omnihook.receiver.crm.testing import FakeHubSpot
from omnihook.receiver.ops.metrics import METRICS, Metrics, crm_operation
from omnihook.store import Store

TOKEN = "metrics-token"
CHAT = ["chat-start", "chat-taken", "visitor-message", "agent-message", "chat-close"]


def value(name: str, **labels: str) -> float:
    return METRICS.registry.get_sample_value(name, labels) or 0.0


class Counts:
    """Sample values now, to compare with later (the metrics are the process's)."""

    def __init__(self, *series: tuple[str, dict[str, str]]) -> None:
        self.series = series
        self.before = [value(name, **labels) for name, labels in series]

    def deltas(self) -> list[float]:
        pairs = zip(self.series, self.before, strict=True)
        return [value(name, **labels) - before for (name, labels), before in pairs]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def failing_router(calls: list[str]) -> Router:
    router = Router()

    @router.on(EventType.CHAT_CLOSE)
    async def archive(event: Any, context: HandlerContext) -> None:
        calls.append("archive")
        raise RuntimeError("archive is down")

    @router.on_any
    async def count(event: Any, context: HandlerContext) -> None:
        calls.append("count")

    return router


async def scrape(
    client: httpx.AsyncClient, **headers: str
) -> dict[tuple[str, tuple[Any, ...]], float]:
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_a_chat_counts_its_deliveries_handlings_and_backlog(store: Store) -> None:
    calls: list[str] = []
    router = failing_router(calls)
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False, metrics_path="/metrics")
    now = [time.time() + 1]
    worker = Worker(store, router, policy=HandlingPolicy(attempts=2), clock=lambda: now[0])
    counts = Counts(
        ("omnihook_events_accepted_total", {"type": "LivechatSessionStart"}),
        ("omnihook_events_accepted_total", {"type": "Message"}),
        ("omnihook_events_duplicates_total", {"type": "LivechatSession"}),
        ("omnihook_http_requests_total", {"route": "webhook", "status": "200", "error": ""}),
        ("omnihook_http_requests_total", {"route": "webhook", "status": "401", "error": "invalid_token"}),
        ("omnihook_http_requests_total", {"route": "webhook", "status": "422", "error": "contract_violation"}),
        ("omnihook_handling_total", {"handler": "failing_router.count", "outcome": "done"}),
        ("omnihook_handling_total", {"handler": "failing_router.archive", "outcome": "retried"}),
        ("omnihook_handling_total", {"handler": "failing_router.archive", "outcome": "dead"}),
        ("omnihook_handling_delay_seconds_count", {"type": "Message"}),
        ("omnihook_store_commit_seconds_count", {"operation": "accept"}),
    )  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        for name in CHAT:
            document = samples.sample(name)
            answer = await c.post("/rocketchat", json=document, headers={TOKEN_HEADER: TOKEN})
            assert answer.status_code == 200
        closing = json.dumps(samples.sample("chat-close"))
        await c.post("/rocketchat", content=closing, headers={TOKEN_HEADER: TOKEN})  # again
        await c.post("/rocketchat", content=closing, headers={TOKEN_HEADER: "a guess"})
        await c.post("/rocketchat", content=b'{"type": "Message"}', headers={TOKEN_HEADER: TOKEN})

        scraped = await scrape(c)
        assert scraped[("omnihook_events", (("status", "pending"),))] == 5
        assert scraped[("omnihook_events_oldest_pending_age_seconds", ())] >= 0
        assert scraped[("omnihook_store_up", ())] == 1

        await worker.drain()
        now[0] += 3600
        await worker.drain()  # the close's second and last attempt
        scraped = await scrape(c)
    assert scraped[("omnihook_events", (("status", "pending"),))] == 0
    assert scraped[("omnihook_events", (("status", "dead"),))] == 1
    assert scraped[("omnihook_events_oldest_pending_age_seconds", ())] == 0
    assert counts.deltas() == [1, 2, 1, 6, 1, 1, 5, 1, 1, 2, 6]  # 6 accepts: 5 new, 1 again
    assert scraped[("omnihook_http_requests_total",
                    (("error", ""), ("route", "metrics"), ("status", "200")))] >= 1  # fmt: skip
    for name, _ in scraped:
        assert "room" not in name


async def test_the_oldest_pending_age_is_read_from_the_store(store: Store) -> None:
    router = Router()
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        await c.post(
            "/rocketchat", json=samples.sample("chat-start"), headers={TOKEN_HEADER: TOKEN}
        )
    [event] = await store.events.find(limit=1)
    metrics = Metrics()
    await metrics.refresh(store, now=event.received_at + 42.5)
    assert metrics.registry.get_sample_value("omnihook_events_oldest_pending_age_seconds") == 42.5
    assert metrics.registry.get_sample_value("omnihook_events", {"status": "pending"}) == 1
    assert metrics.registry.get_sample_value("omnihook_outbox", {"status": "pending"}) == 0


async def test_a_store_that_cannot_answer_is_a_gauge_not_a_failed_scrape(tmp_path: Any) -> None:
    broken = Store(f"sqlite:///{tmp_path}")  # a directory, not a database file
    metrics = Metrics()
    await metrics.refresh(broken)
    assert metrics.registry.get_sample_value("omnihook_store_up") == 0


async def test_metrics_behind_a_token() -> None:
    app = create_app(Router(), tokens=[TOKEN], metrics_path="/metrics", metrics_token="scrape-me")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        refused = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert refused.status_code == wrong.status_code == 401
        assert refused.json()["error"] == "invalid_token"
        scraped = await scrape(c, Authorization="Bearer scrape-me")
    assert ("omnihook_http_requests_total", (("error", "invalid_token"), ("route", "metrics"),
                                             ("status", "401"))) in scraped  # fmt: skip
    without = create_app(Router(), tokens=[TOKEN])  # a library user's app: none unless asked
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=without), base_url="http://r"
    ) as c:
        assert (await c.get("/metrics")).status_code == 404


def test_crm_operations_are_bounded_labels() -> None:
    assert crm_operation("post", "/crm/v3/objects/contacts/batch/upsert") == (
        "POST /crm/v3/objects/contacts/batch/upsert"
    )
    assert crm_operation("PATCH", "/crm/v3/objects/notes/51234567") == (
        "PATCH /crm/v3/objects/notes/{id}"
    )
    assert crm_operation("PATCH", "/services/data/v60.0/sobjects/Task/00T5e000001AbCdEAF") == (
        "PATCH /services/data/v60.0/sobjects/Task/{id}"
    )
    assert crm_operation("PUT", "/crm/v8/Contacts/5725767000000524157?x=1") == (
        "PUT /crm/v8/Contacts/{id}"
    )


async def test_crm_calls_count_by_adapter_operation_and_outcome(
    store: Store, httpserver: HTTPServer
) -> None:
    hubspot = FakeHubSpot(httpserver)
    router = Router()

    async def no_wait(seconds: float) -> None:
        pass

    HubSpotAdapter(token=hubspot.token, base_url=hubspot.base_url, links=store.crm_links,
                   sleep=no_wait).register(router)  # fmt: skip
    upsert = "POST /crm/v3/objects/contacts/batch/upsert"
    counts = Counts(
        ("omnihook_crm_requests_total", {"adapter": "hubspot", "operation": upsert, "outcome": "ok"}),
        ("omnihook_crm_requests_total",
         {"adapter": "hubspot", "operation": upsert, "outcome": "rate_limited"}),
        ("omnihook_crm_request_seconds_count", {"adapter": "hubspot", "operation": upsert}),
    )  # fmt: skip
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    now = [time.time() + 1]
    worker = Worker(store, router, clock=lambda: now[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        await c.post(
            "/rocketchat", json=samples.sample("chat-start"), headers={TOKEN_HEADER: TOKEN}
        )
    hubspot.rate_limit_next()
    await worker.drain()
    now[0] += 60
    await worker.drain()
    [event] = await store.events.find(limit=1)
    assert event.status == "done", event.last_error
    assert counts.deltas() == [1, 1, 2]


async def test_outbox_deliveries_count_by_outcome(tmp_path: Any, httpserver: HTTPServer) -> None:
    """A sender's dispatcher in this process: its attempts show as
    omnihook_outbox_deliveries_total (the store counts them)."""
    from omnihook.sender import RetryPolicy, Sender

    httpserver.expect_ordered_request("/hook").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/hook").respond_with_json({"ok": True})
    counts = Counts(
        *(("omnihook_outbox_deliveries_total", {"outcome": o}) for o in ("done", "failed"))
    )
    policy = RetryPolicy(attempts=2, delay=0.01)
    async with Sender(httpserver.url_for("/hook"), token="t", policy=policy,
                      outbox=f"sqlite:///{tmp_path / 'outbox.db'}") as sender:  # fmt: skip
        await sender.enqueue(samples.sample("chat-start"))
        await sender.drain()
    assert counts.deltas() == [1, 1]
