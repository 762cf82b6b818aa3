"""The outbox store, run identically on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from omnihook.store import OutboxAttempt, OutboxItem, Store

URL = "http://crm.example/hook"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def item(body: str, room: str | None = "R1", url: str = URL, at: float = 100.0) -> OutboxItem:
    return OutboxItem(url=url, body=body.encode(), room_id=room, type="Message", created_at=at)


def attempt(status: int | None, at: float = 100.0, error: str | None = None) -> OutboxAttempt:
    return OutboxAttempt(number=0, started_at=at, elapsed=0.01, status=status, error=error)


async def test_put_returns_ids_in_order_even_when_batched(store: Store) -> None:
    ids = await asyncio.gather(*(store.outbox.put(item(f"b{n}")) for n in range(100)))
    assert ids == sorted(ids)
    assert len(set(ids)) == 100
    bodies = [(await store.outbox.get(i)).body for i in ids[:3]]  # type: ignore[union-attr]
    assert bodies == [b"b0", b"b1", b"b2"]


async def test_one_delivery_per_url_and_room_at_a_time(store: Store) -> None:
    r1a = await store.outbox.put(item("r1a"))
    await store.outbox.put(item("r1b"))
    other_url = await store.outbox.put(item("r1 elsewhere", url="http://other/hook"))
    offline_a = await store.outbox.put(item("offline a", room=None))
    offline_b = await store.outbox.put(item("offline b", room=None))
    claimed = await store.outbox.claim("d1", 10, 30, now=100)
    assert [c.id for c in claimed] == [r1a, other_url, offline_a, offline_b]


async def test_retries_resume_at_their_due_time_after_a_restart(store_url: str) -> None:
    async with Store.open(store_url) as first_process:
        entry_id = await first_process.outbox.put(item("x"))
        [entry] = await first_process.outbox.claim("d1", 10, 30, now=100)
        await first_process.outbox.record(entry, "d1", attempt(503), "failed", 120.0, "busy")
    async with Store.open(store_url) as restarted:
        assert await restarted.outbox.claim("d2", 10, 30, now=119) == []
        assert await restarted.outbox.next_due() == 120.0
        [again] = await restarted.outbox.claim("d2", 10, 30, now=120)
        assert (again.id, again.attempts, again.last_status) == (entry_id, 1, 503)


async def test_done_delivery_records_crm_data_for_its_room(store: Store) -> None:
    await store.outbox.put(item("start"))
    [entry] = await store.outbox.claim("d", 10, 30, now=100)
    assert await store.outbox.record(entry, "d", attempt(200), "done", 100, '{"id":"c-1"}')
    assert await store.outbox.crm_data(URL, "R1") == '{"id":"c-1"}'
    assert await store.outbox.crm_data("http://other/hook", "R1") is None
    stored = await store.outbox.get(entry.id)
    assert stored is not None
    assert (stored.status, stored.response_text) == ("done", '{"id":"c-1"}')


async def test_lost_lease_drops_the_record(store: Store) -> None:
    await store.outbox.put(item("slow"))
    [held] = await store.outbox.claim("d1", 10, lease=30, now=100)
    [taken] = await store.outbox.claim("d2", 10, lease=30, now=131)
    assert not await store.outbox.record(held, "d1", attempt(200), "done", 131, "")
    assert await store.outbox.record(taken, "d2", attempt(200), "done", 131, "")


async def test_body_can_change_only_before_the_first_attempt(store: Store) -> None:
    await store.outbox.put(item("original"))
    [entry] = await store.outbox.claim("d", 10, 30, now=100)
    await store.outbox.set_body(entry.id, "d", b"with crmData")
    await store.outbox.record(entry, "d", attempt(500), "failed", 100, "")
    [again] = await store.outbox.claim("d", 10, 30, now=100)
    await store.outbox.set_body(again.id, "d", b"changed again")
    assert again.body == b"with crmData"
    assert (await store.outbox.get(entry.id)).body == b"with crmData"  # type: ignore[union-attr]


async def test_dead_letters_list_retry_and_purge(store: Store) -> None:
    entry_id = await store.outbox.put(item("doomed"))
    [entry] = await store.outbox.claim("d", 10, 30, now=100)
    await store.outbox.record(entry, "d", attempt(None, error="refused"), "dead", 100, None)
    assert [e.id for e in await store.outbox.find(status="dead")] == [entry_id]
    assert [a.error for a in await store.outbox.attempts(entry_id)] == ["refused"]
    assert await store.outbox.retry(None, now=200) == [entry_id]
    [again] = await store.outbox.claim("d", 10, 30, now=200)
    await store.outbox.record(again, "d", attempt(200, at=200), "done", 200, "ok")
    assert [a.number for a in await store.outbox.attempts(entry_id)] == [1, 2]
    assert await store.outbox.purge(["done"], finished_before=150) == 0
    assert await store.outbox.purge(["done"], finished_before=300) == 1
    assert await store.outbox.get(entry_id) is None
    assert await store.outbox.attempts(entry_id) == []
    assert (await store.outbox.counts())["done"] == 0


async def test_outcomes_recorded_together_keep_each_delivery_apart(store: Store) -> None:
    # Concurrent records share one statement per step: each row must still get its own values,
    # a lost lease must drop only its own outcome, and one room's last answer must win.
    for n in range(6):
        await store.outbox.put(item(f"b{n}", room=f"R{n % 3}" if n < 5 else None))
    first = await store.outbox.claim("d", 10, 30, now=100)  # b0, b1, b2, b5 (one per room)
    assert [e.body for e in first] == [b"b0", b"b1", b"b2", b"b5"]
    b0, b1, b2, b5 = first
    outcomes = await asyncio.gather(
        store.outbox.record(b0, "d", attempt(200, at=101), "done", 101, '{"n":0}'),
        store.outbox.record(b1, "d", attempt(503, at=102), "failed", 160, "busy"),
        store.outbox.record(b2, "someone else", attempt(200, at=103), "done", 103, "x"),
        store.outbox.record(b5, "d", attempt(None, at=104, error="refused"), "dead", 104, None),
    )
    assert outcomes == [True, True, False, True]
    states = {e.id: e for e in await store.outbox.find(limit=10)}
    assert (states[b0.id].status, states[b0.id].last_status, states[b0.id].finished_at) == (
        "done",
        200,
        pytest.approx(101.01),
    )
    assert (states[b1.id].status, states[b1.id].next_attempt_at, states[b1.id].finished_at) == (
        "failed",
        160,
        None,
    )
    assert (states[b2.id].status, states[b2.id].attempts) == ("sending", 0)  # lease not held
    assert (states[b5.id].status, states[b5.id].last_error) == ("dead", "refused")
    assert [a.number for a in await store.outbox.attempts(b1.id)] == [1]
    assert await store.outbox.attempts(b2.id) == []
    # The room's next delivery (b3 after b0) answers too: the newer answer is the crmData.
    [b3] = [e for e in await store.outbox.claim("d", 10, 30, now=105) if e.body == b"b3"]
    await store.outbox.record(b3, "d", attempt(200, at=106), "done", 106, '{"n":3}')
    assert await store.outbox.crm_data(URL, "R0") == '{"n":3}'


async def test_the_same_delivery_twice_in_one_batch_counts_once(store: Store) -> None:
    await store.outbox.put(item("ahead", room="R0"))
    await store.outbox.put(item("twice"))
    ahead, entry = await store.outbox.claim("d", 10, 30, now=100)
    # The first record runs alone; the two that wait for it share the next batch.
    outcomes = await asyncio.gather(
        store.outbox.record(ahead, "d", attempt(200), "done", 100, "ahead"),
        store.outbox.record(entry, "d", attempt(200), "done", 100, "first"),
        store.outbox.record(entry, "d", attempt(200), "done", 100, "second"),
    )
    assert outcomes == [True, True, False]
    assert [a.number for a in await store.outbox.attempts(entry.id)] == [1]
    assert (await store.outbox.get(entry.id)).response_text == "first"  # type: ignore[union-attr]
