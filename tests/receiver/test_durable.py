"""The receiver with a store, on SQLite and on the real PostgreSQL: 200 after commit, dedup,
per-room order, stale events, retries, dead letters, 503 while the store is gone."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from omnihook.contracts import AnyEvent, EventType, LivechatSessionStart, samples
from omnihook.receiver import (
    TOKEN_HEADER,
    HandlerContext,
    HandlingPolicy,
    PermanentError,
    Router,
    Worker,
    create_app,
)
from omnihook.store import Store

from ..tcp_proxy import TcpProxy

TOKEN = "durable-token"


class Clock:
    """The worker's time, moved by hand (it starts at the real time the app stamps events with)."""

    def __init__(self) -> None:
        self.now = time.time() + 1

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Handlers that record what they saw, failing on demand."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, bool, int]] = []
        self.fail_next: list[Exception] = []

    def router(self) -> Router:
        router = Router()

        @router.on_any
        async def record(event: AnyEvent, context: HandlerContext) -> None:
            self.seen.append((event.type, event.room_id, context.stale, context.attempt))

        @router.on(EventType.CHAT_START)
        async def create_contact(event: AnyEvent) -> dict[str, Any]:
            if self.fail_next:
                raise self.fail_next.pop(0)
            return {"contactId": "crm-1"}

        return router


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(store: Store, recorder: Recorder, clock: Clock) -> Worker:
    policy = HandlingPolicy(
        attempts=3, initial_delay=10, backoff=2, jitter=0, max_age=3600, handler_timeout=0.5
    )
    return Worker(store, recorder.router(), policy=policy, clock=clock, name="test-worker")


@pytest.fixture
async def client(store: Store, worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(worker.router, tokens=[TOKEN], store=store, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        yield client


async def post(client: httpx.AsyncClient, document: Any) -> httpx.Response:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return await client.post("/rocketchat", content=body, headers={TOKEN_HEADER: TOKEN})


def start_without_crm_data() -> dict[str, Any]:
    document = samples.sample("chat-start")
    document.pop("crmData", None)
    return document


async def test_200_comes_after_the_commit_and_handling_comes_later(
    client: httpx.AsyncClient, store: Store, worker: Worker, recorder: Recorder
) -> None:
    response = await post(client, start_without_crm_data())
    assert (response.status_code, response.json()) == (200, {"ok": True})
    [stored] = await store.events.find()
    assert (stored.status, stored.type) == ("pending", "LivechatSessionStart")
    assert recorder.seen == []
    assert await worker.drain() == 1
    assert recorder.seen == [("LivechatSessionStart", "hX4Lq2rNwPZ8Kc7Ry", False, 1)]
    assert (await store.events.get(stored.id)).status == "done"  # type: ignore[union-attr]


async def test_duplicates_get_the_first_answer_and_are_handled_once(
    client: httpx.AsyncClient, worker: Worker, recorder: Recorder
) -> None:
    body = json.dumps(samples.sample("chat-taken")).encode()
    responses = await asyncio.gather(*(post(client, body) for _ in range(20)))
    assert {(r.status_code, r.text) for r in responses} == {
        (200, '{"ok":true,"contactId":"crm-7731"}')
    }
    await worker.drain()
    again = await post(client, body)
    await worker.drain()
    assert again.text == responses[0].text
    assert [seen[0] for seen in recorder.seen] == ["LivechatSessionTaken"]


async def test_answers_carry_what_handling_learnt_about_the_room(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    first = await post(client, start_without_crm_data())
    assert first.json() == {"ok": True}  # not handled yet: nothing known
    await worker.drain()
    message = samples.sample("visitor-message")
    message.pop("crmData")
    later = await post(client, message)
    assert later.json() == {"contactId": "crm-1"}


async def test_a_room_is_handled_in_arrival_order_and_late_events_are_stale(
    client: httpx.AsyncClient, worker: Worker, recorder: Recorder
) -> None:
    other_room = samples.sample("chat-start")
    other_room["_id"] = "OTHER"
    for document in (samples.sample("chat-taken"), samples.sample("chat-queued"), other_room,
                     samples.sample("agent-message"), samples.sample("chat-start")):  # fmt: skip
        assert (await post(client, document)).status_code == 200
    await worker.drain()
    in_room = [
        (kind, stale) for kind, room, stale, _ in recorder.seen if room == "hX4Lq2rNwPZ8Kc7Ry"
    ]
    assert in_room == [
        ("LivechatSessionTaken", False),
        ("LivechatSessionQueued", True),  # Queued after Taken
        ("Message", False),
        ("LivechatSessionStart", True),
    ]
    assert ("LivechatSessionStart", "OTHER", False, 1) in recorder.seen


async def test_transient_failure_is_retried_with_backoff_and_only_failed_handlers_rerun(
    client: httpx.AsyncClient, store: Store, worker: Worker, recorder: Recorder, clock: Clock
) -> None:
    recorder.fail_next = [ConnectionError("CRM unreachable")]
    await post(client, start_without_crm_data())
    await worker.drain()
    [event] = await store.events.find()
    assert (event.status, event.attempts, event.next_attempt_at) == ("failed", 1, clock.now + 10)
    assert "create_contact raised ConnectionError: CRM unreachable" in (event.last_error or "")
    clock.now += 9
    assert await worker.drain() == 0  # not due yet
    clock.now += 1
    assert await worker.drain() == 1
    event = await store.events.get(event.id)  # type: ignore[assignment]
    assert event.status == "done"
    assert [a.outcome for a in await store.events.attempts(event.id)] == ["failed", "done"]
    assert len(recorder.seen) == 1  # `record` succeeded the first time and did not run again
    assert (await store.events.room("hX4Lq2rNwPZ8Kc7Ry")).crm_data == {"contactId": "crm-1"}  # type: ignore[union-attr]


async def test_permanent_error_dead_letters_at_once(
    client: httpx.AsyncClient, store: Store, worker: Worker, recorder: Recorder
) -> None:
    recorder.fail_next = [PermanentError("CRM says: invalid email")]
    await post(client, start_without_crm_data())
    await worker.drain()
    [dead] = await store.events.find(status="dead")
    assert dead.attempts == 1
    assert (
        dead.last_error
        == "Recorder.router.create_contact raised PermanentError: CRM says: invalid email"
    )


async def test_last_attempt_dead_letters_with_history_and_replay_brings_it_back(
    client: httpx.AsyncClient, store: Store, worker: Worker, recorder: Recorder, clock: Clock
) -> None:
    recorder.fail_next = [RuntimeError(f"down {n}") for n in range(3)]
    await post(client, start_without_crm_data())
    for _ in range(3):
        await worker.drain()
        clock.now += 100
    [dead] = await store.events.find(status="dead")
    assert (
        dead.last_error
        == "gave up after 3 attempts: Recorder.router.create_contact raised RuntimeError: down 2"
    )
    assert [a.outcome for a in await store.events.attempts(dead.id)] == ["failed", "failed", "dead"]
    assert (await store.events.replay([dead.id], now=clock.now)).replayed == [dead.id]
    await worker.drain()
    assert (await store.events.get(dead.id)).status == "done"  # type: ignore[union-attr]


async def test_events_older_than_the_maximum_age_are_dead_lettered(
    client: httpx.AsyncClient, store: Store, worker: Worker, recorder: Recorder, clock: Clock
) -> None:
    recorder.fail_next = [RuntimeError("down")]
    await post(client, start_without_crm_data())
    [event] = await store.events.find()
    clock.now = event.received_at + 3600
    await worker.drain()
    [dead] = await store.events.find(status="dead")
    assert dead.last_error is not None
    assert dead.last_error.startswith("gave up: older than 3600 s")


async def test_a_handler_that_times_out_is_retried(store: Store, clock: Clock) -> None:
    router = Router()
    calls: list[int] = []

    @router.on_any
    async def slow_then_fast(event: AnyEvent, context: HandlerContext) -> None:
        calls.append(context.attempt)
        if context.attempt == 1:
            await asyncio.sleep(30)

    policy = HandlingPolicy(initial_delay=1, jitter=0, handler_timeout=0.2)
    worker = Worker(store, router, policy=policy, clock=clock)
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        await post(client, samples.sample("chat-start"))
    await worker.drain()
    [event] = await store.events.find()
    assert event.status == "failed"
    assert event.last_error is not None
    assert event.last_error.endswith("raised HandlerTimeout: did not finish within 0.2 s")
    clock.now += 1
    await worker.drain()
    assert (await store.events.get(event.id)).status == "done"  # type: ignore[union-attr]
    assert calls == [1, 2]


async def test_the_send_test_sample_is_answered_without_storing(
    client: httpx.AsyncClient, store: Store
) -> None:
    response = await post(client, samples.send_test_sample())
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert await store.events.find() == []


async def test_healthz_reports_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok", "store": "ok"}


async def test_store_gone_gives_503_and_the_receiver_recovers(
    store_url: str, tmp_path: Any
) -> None:
    router = Router()
    if store_url.startswith("sqlite"):
        url = f"{store_url}?busy_timeout=100"
        path = urlsplit(store_url).path[1:]

        async def outage() -> Any:
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
            return blocker.rollback

    else:
        parts = urlsplit(store_url)
        proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        url = store_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}", 1)
        url += "&connect_timeout=1"

        async def outage() -> Any:
            await proxy.cut()  # the database host is unreachable
            return proxy.restore

    async with Store.open(url) as store:
        app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            assert (await post(client, samples.sample("chat-start"))).status_code == 200
            restore = await outage()
            down = await post(client, samples.sample("chat-queued"))
            assert down.status_code == 503
            assert down.json()["error"] == "store_unavailable"
            assert "Rocket.Chat will retry" in down.json()["detail"]
            assert (await client.get("/healthz")).status_code == 503
            result = restore()
            if asyncio.iscoroutine(result):
                await result
            back = await post(client, samples.sample("chat-queued"))
            assert back.status_code == 200
            assert (await client.get("/healthz")).status_code == 200
        assert [e.type for e in await store.events.find()] == [
            "LivechatSessionQueued",
            "LivechatSessionStart",
        ]


async def test_stopping_a_worker_hands_back_what_it_cannot_finish(
    store: Store, clock: Clock
) -> None:
    router = Router()
    started = asyncio.Event()
    runs: list[str] = []

    @router.on_any
    async def slow(event: AnyEvent, context: HandlerContext) -> None:
        runs.append(context.dedup_key)
        started.set()
        await asyncio.sleep(30)

    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        await post(client, samples.sample("chat-start"))
    first = Worker(store, router, clock=clock, name="first")
    running = asyncio.create_task(first.run())
    await asyncio.wait_for(started.wait(), 10)
    await first.stop(grace=0.1)
    await running
    [event] = await store.events.find()
    assert (event.status, event.attempts, event.lease_owner) == ("pending", 0, None)

    fast_router = Router()
    fast_router.on_any(lambda e: None)
    second = Worker(store, fast_router, clock=clock, name="second")
    assert await second.drain() == 1
    assert (await store.events.get(event.id)).status == "done"  # type: ignore[union-attr]


async def test_the_first_attempt_takes_the_model_the_request_parsed_and_a_retry_parses_again(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import omnihook.receiver.worker as worker_module

    parses: list[bytes] = []
    real_parse = worker_module.parse_event

    def counting_parse(body: bytes) -> AnyEvent:
        parses.append(body)
        return real_parse(body)

    monkeypatch.setattr(worker_module, "parse_event", counting_parse)
    router = Router()
    seen: list[AnyEvent] = []

    @router.on_any
    async def tag_then_fail_once(event: AnyEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            assert isinstance(event, LivechatSessionStart)
            event.tags = ["changed by the first attempt"]
            raise ConnectionError("CRM unreachable")

    policy = HandlingPolicy(attempts=3, initial_delay=10, jitter=0)
    worker = Worker(store, router, policy=policy, clock=clock, name="reuse")
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    app.state.endpoint.worker = worker  # the worker of this process, as serve runs it
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        assert (await post(client, start_without_crm_data())).status_code == 200
    assert await worker.drain() == 1
    assert parses == []  # the request's model, not a second parse of the body
    clock.now += 10
    assert await worker.drain() == 1
    assert len(parses) == 1  # the retry parsed the stored body again
    assert seen[1] is not seen[0]
    assert isinstance(seen[1], LivechatSessionStart)
    assert seen[1].tags == start_without_crm_data().get("tags")  # not the first attempt's change
    [event] = await store.events.find()
    assert event.status == "done"


async def test_a_worker_on_another_connection_hears_of_new_events_without_polling(
    store_url: str, store: Store
) -> None:
    # As `serve --no-worker` beside `omnihook worker`: the worker has a store of its own, and
    # it polls once an hour here, so only the store's watch can bring it the event in time.
    handled = asyncio.Event()
    router = Router()
    router.on_any(lambda event: handled.set())
    async with Store.open(store_url) as worker_store:
        worker = Worker(worker_store, router, poll_interval=3600, name="elsewhere")
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.3)  # its first, empty claim is behind it: now it waits
            app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://r"
            ) as client:
                assert (await post(client, start_without_crm_data())).status_code == 200
            await asyncio.wait_for(handled.wait(), 10)
        finally:
            await worker.stop()
            await running
    [event] = await store.events.find()
    assert (event.status, event.lease_owner) == ("done", None)
