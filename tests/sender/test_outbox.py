"""The sender's durable outbox, on SQLite and on the real PostgreSQL, against pytest-httpserver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import samples
from omnihook.sender import FakeClock, RetryPolicy, Sender
from omnihook.store import Store

START = 1_800_000_000.0


def room_event(room: str, n: int) -> dict[str, Any]:
    document = samples.sample("visitor-message")
    document["_id"] = room
    document["messages"][0]["msg"] = f"{room}-{n}"
    document.pop("crmData")
    return document


def seen(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


async def test_enqueue_commits_then_the_dispatcher_delivers(
    store_url: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data('{"id":"c-1"}')
    async with Sender(httpserver.url_for("/hook"), token="t", outbox=store_url) as sender:
        entry_id = await sender.enqueue(samples.sample("chat-start"))
        assert sender.outbox is not None
        stored = await sender.outbox.outbox.get(entry_id)
        assert stored is not None
        assert (
            stored.body == json.dumps(samples.sample("chat-start"), separators=(",", ":")).encode()
        )
        await sender.drain()
        done = await sender.outbox.outbox.get(entry_id)
        assert done is not None
        assert (done.status, done.last_status, done.response_text) == ("done", 200, '{"id":"c-1"}')
    [(request, _)] = httpserver.log
    assert request.headers["X-RocketChat-Livechat-Token"] == "t"


async def test_retries_are_persisted_and_resume_at_their_due_time_after_a_restart(
    store_url: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    url = httpserver.url_for("/hook")
    first_clock = FakeClock(START)
    async with Store.open(store_url) as store:
        first = Sender(url, timeout=5, outbox=store, clock=first_clock)
        entry_id = await first.enqueue(samples.sample("chat-start"))
        dispatcher = first.dispatcher()
        await dispatcher._claim_some()  # one attempt, then the process "dies"
        await asyncio.wait(list(dispatcher._inflight.values()))
        await first.aclose()
        failed = await store.outbox.get(entry_id)
        assert failed is not None
        assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, START + 20)

    restarted_clock = FakeClock(START + 5)  # the new process starts 5 s later
    async with Sender(url, timeout=5, outbox=store_url, clock=restarted_clock) as restarted:
        await restarted.drain()
        assert restarted.outbox is not None
        delivered = await restarted.outbox.outbox.get(entry_id)
        attempts = await restarted.outbox.outbox.attempts(entry_id)
    assert delivered is not None
    assert (delivered.status, delivered.attempts) == ("done", 2)
    assert [(a.number, a.status, a.started_at) for a in attempts] == [
        (1, 503, START),
        (2, 200, START + 20),  # at its due time: not from scratch, not early, not lost
    ]
    assert len(httpserver.log) == 2


async def test_dead_letter_after_the_last_attempt(store_url: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("no", status=500)
    clock = FakeClock(START)
    policy = RetryPolicy(attempts=3, delay=1.0)
    async with Sender(
        httpserver.url_for("/hook"), outbox=store_url, clock=clock, policy=policy
    ) as sender:
        entry_id = await sender.enqueue(samples.sample("chat-start"))
        await sender.drain()
        assert sender.outbox is not None
        dead = await sender.outbox.outbox.get(entry_id)
        attempts = await sender.outbox.outbox.attempts(entry_id)
    assert dead is not None
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 3, "HTTP 500: no")
    assert len(httpserver.log) == 3
    assert [a.started_at - START for a in attempts] == [0.0, 1.0, 2.0]


async def test_each_room_keeps_its_order_and_concurrency_is_capped(
    store_url: str, threaded_httpserver: HTTPServer
) -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def slow(request: Request) -> Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return Response("ok")

    threaded_httpserver.expect_request("/hook").respond_with_handler(slow)
    async with Sender(
        threaded_httpserver.url_for("/hook"), outbox=store_url, concurrency=3
    ) as sender:
        await asyncio.gather(
            *(sender.enqueue(room_event(f"R{r}", n)) for n in range(6) for r in range(5))
        )
        await sender.drain()
    messages = [doc["messages"][0]["msg"] for doc in seen(threaded_httpserver)]
    assert len(messages) == 30
    for room in range(5):
        in_room = [m for m in messages if m.startswith(f"R{room}-")]
        assert in_room == [f"R{room}-{n}" for n in range(6)]
    assert 1 < peak <= 3


async def test_crm_data_of_the_last_200_rides_along_like_rocket_chat_does(
    store_url: str, httpserver: HTTPServer
) -> None:
    answers = iter(['{"contactId":"c-1"}', '{"contactId":"c-1","ticket":"T-9"}', "{}"])
    httpserver.expect_request("/hook").respond_with_handler(lambda request: Response(next(answers)))
    stored: list[tuple[str, str]] = []
    url = httpserver.url_for("/hook")
    async with Sender(url, outbox=store_url, echo_crm_data=True, concurrency=4,
                      on_response=lambda room, text: stored.append((room, text))) as sender:  # fmt: skip
        for n in range(3):
            await sender.enqueue(room_event("R1", n))
        await sender.drain()
    bodies = seen(httpserver)
    assert [b.get("crmData") for b in bodies] == [
        None,
        '{"contactId":"c-1"}',
        '{"contactId":"c-1","ticket":"T-9"}',
    ]
    assert (
        list(bodies[1]).index("crmData") == list(bodies[1]).index("type") - 1
    )  # where Rocket.Chat puts it
    assert stored[-1] == ("R1", "{}")


async def test_enqueue_without_an_outbox_says_how_to_get_one() -> None:
    async with Sender("http://127.0.0.1:9/hook") as sender:
        with pytest.raises(RuntimeError, match="this sender has no outbox"):
            await sender.enqueue(samples.sample("chat-start"))


async def test_an_endpoint_echoing_the_token_leaves_it_in_no_recorded_error(
    store_url: str, httpserver: HTTPServer
) -> None:
    token = "outbox-secret-0123456789"

    def echo(request: Request) -> Response:
        headers = "; ".join(f"{key}: {value}" for key, value in request.headers.items())
        return Response(f"denied, you sent {headers}", status=401)

    httpserver.expect_request("/hook").respond_with_handler(echo)
    async with Sender(httpserver.url_for("/hook"), token=token, outbox=store_url) as sender:
        entry_id = await sender.enqueue(samples.sample("chat-start"))
        await sender.drain()
        assert sender.outbox is not None
        entry = await sender.outbox.outbox.get(entry_id)
        attempts = await sender.outbox.outbox.attempts(entry_id)
    assert entry is not None
    assert entry.status == "dead"
    recorded = f"{entry.last_error} {entry.response_text} {[a.error for a in attempts]}"
    assert "denied, you sent" in recorded
    assert token not in recorded
    [(request, _)] = httpserver.log
    assert request.headers["X-RocketChat-Livechat-Token"] == token  # it was sent, and echoed


async def test_a_huge_error_page_is_kept_short(store_url: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("oops " * 400_000, status=400)
    async with Sender(httpserver.url_for("/hook"), token="t", outbox=store_url) as sender:
        entry_id = await sender.enqueue(samples.sample("chat-start"))
        await sender.drain()
        assert sender.outbox is not None
        entry = await sender.outbox.outbox.get(entry_id)
    assert entry is not None
    assert entry.status == "dead"
    assert entry.response_text is not None
    assert entry.response_text.startswith("oops oops")
    assert len(entry.response_text) <= 4096
