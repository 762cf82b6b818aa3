"""The event store, run identically on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from omnihook.store import (
    SCHEMA_VERSION,
    ClaimedEvent,
    Finish,
    NewEvent,
    SchemaTooNew,
    Store,
)

from ..store_urls import fresh_store_url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def new(
    body: str, room: str | None = "R1", at: float = 100.0, crm: dict[str, Any] | None = None
) -> NewEvent:
    raw = body.encode()
    return NewEvent(
        dedup_key=hashlib.sha256(raw).hexdigest(),
        room_id=room,
        type="Message",
        body=raw,
        received_at=at,
        previous_crm_data=crm,
    )


def done(at: float = 200.0, **kwargs: Any) -> Finish:
    return Finish(status="done", started_at=at, finished_at=at + 0.01, **kwargs)


async def test_schema_is_created_once_and_versioned(store_url: str) -> None:
    async with Store.open(store_url) as first:
        version = await first.database.run(
            lambda tx: tx.execute("SELECT MAX(version) FROM omnihook_schema").fetchone()
        )
        assert version == (SCHEMA_VERSION,)
    async with Store.open(store_url) as again:  # a second open migrates nothing
        rows = await again.database.run(
            lambda tx: tx.execute("SELECT version FROM omnihook_schema ORDER BY version").fetchall()
        )
        assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
        await again.database.run(lambda tx: tx.execute("INSERT INTO omnihook_schema VALUES (99)"))
    with pytest.raises(SchemaTooNew, match="version 99, newer than this omnihook's"):
        async with Store.open(store_url):
            pass


async def test_an_older_schema_is_migrated_step_by_step(store_url: str) -> None:
    async with Store.open(store_url) as store:
        await store.events.accept(new("kept across the migration"))

        def back_to_version_1(tx: Any) -> None:
            tx.execute("DROP TABLE omnihook_state")  # what step 6 made
            tx.execute("ALTER TABLE events DROP COLUMN deferrals")
            tx.execute("DROP INDEX events_type")
            tx.execute("DROP INDEX rooms_updated")
            tx.execute("DROP INDEX crm_links_key")
            tx.execute("ALTER TABLE events DROP COLUMN trace_context")
            tx.execute("DROP TABLE omnihook_locks")  # what step 5 made
            tx.execute("DROP INDEX events_identity")
            tx.execute("ALTER TABLE events DROP COLUMN identity")
            tx.execute("ALTER TABLE events DROP COLUMN source")
            tx.execute("DROP TABLE omnihook_health")  # what step 4 made
            for table in ("crm_messages", "crm_conversations", "crm_contacts", "crm_links"):
                tx.execute(f"DROP TABLE {table}")  # what step 2 made
            for index in ("events_active_id", "outbox_active_id"):
                tx.execute(f"DROP INDEX {index}")  # what step 3 made
            tx.execute("DELETE FROM omnihook_schema WHERE version > 1")

        await store.database.run(back_to_version_1)
    async with Store.open(store_url) as migrated:
        assert len(await migrated.events.find()) == 1
        count = await migrated.database.run(
            lambda tx: tx.execute("SELECT COUNT(*) FROM crm_contacts").fetchone()
        )
        assert count == (0,)
        assert (await migrated.events.claim("w", 10, 30, now=2e9))[
            0
        ].body == b"kept across the migration"


async def test_accept_stores_once_and_answers_duplicates_alike(store: Store) -> None:
    first = await store.events.accept(new('{"a":1}', crm={"contactId": "c-1"}))
    again = await store.events.accept(new('{"a":1}'))
    other = await store.events.accept(new('{"a":2}'))
    assert not first.duplicate
    assert first.answer == '{"contactId":"c-1"}'
    assert (again.event_id, again.answer, again.duplicate) == (first.event_id, first.answer, True)
    assert other.event_id != first.event_id
    assert other.answer == '{"ok":true}'
    assert (await store.events.counts())["pending"] == 2


async def test_concurrent_identical_accepts_store_one_event(store: Store) -> None:
    results = await asyncio.gather(*(store.events.accept(new('{"same":true}')) for _ in range(50)))
    assert len({r.event_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(await store.events.find()) == 1


async def test_many_concurrent_accepts_share_commits(store: Store) -> None:
    results = await asyncio.gather(
        *(store.events.accept(new(f'{{"n":{n}}}', room=f"R{n % 7}")) for n in range(300))
    )
    assert len({r.event_id for r in results}) == 300
    assert (await store.events.counts())["pending"] == 300


async def test_one_event_per_room_at_a_time_in_arrival_order(store: Store) -> None:
    a1 = await store.events.accept(new("a1", room="A"))
    a2 = await store.events.accept(new("a2", room="A"))
    b1 = await store.events.accept(new("b1", room="B"))
    offline1 = await store.events.accept(new("o1", room=None))
    offline2 = await store.events.accept(new("o2", room=None))
    claimed = await store.events.claim("w1", limit=10, lease=30, now=150)
    assert [c.id for c in claimed] == [
        a1.event_id,
        b1.event_id,
        offline1.event_id,
        offline2.event_id,
    ]
    assert await store.events.claim("w2", limit=10, lease=30, now=150) == []
    assert await store.events.finish(claimed[0], "w1", done())
    [next_a] = await store.events.claim("w2", limit=10, lease=30, now=150)
    assert next_a.id == a2.event_id
    assert next_a.body == b"a2"


async def test_failed_events_wait_for_their_retry_and_block_their_room(store: Store) -> None:
    first = await store.events.accept(new("x1", room="A"))
    await store.events.accept(new("x2", room="A"))
    [claimed] = await store.events.claim("w", 10, 30, now=100)
    retry = Finish(status="failed", started_at=100, finished_at=101, error="CRM 503",
                   handlers_done=["audit"], next_attempt_at=160)  # fmt: skip
    assert await store.events.finish(claimed, "w", retry)
    assert await store.events.claim("w", 10, 30, now=159) == []
    [again] = await store.events.claim("w", 10, 30, now=160)
    assert again.id == first.event_id
    assert again.attempts == 1
    assert again.handlers_done == frozenset({"audit"})
    stored = await store.events.get(first.event_id)
    assert stored is not None
    assert (stored.status, stored.last_error) == ("processing", "CRM 503")


async def test_an_expired_lease_is_taken_over_and_the_old_owner_loses(store: Store) -> None:
    await store.events.accept(new("lease"))
    [held] = await store.events.claim("dead-worker", 10, lease=30, now=100)
    assert await store.events.claim("w2", 10, 30, now=129) == []
    [taken] = await store.events.claim("w2", 10, 30, now=130)
    assert taken.id == held.id
    assert not await store.events.finish(held, "dead-worker", done())
    assert await store.events.finish(taken, "w2", done())
    assert (await store.events.attempts(held.id))[0].worker == "w2"


async def test_renewed_leases_are_not_taken_over(store: Store) -> None:
    await store.events.accept(new("long"))
    [held] = await store.events.claim("w1", 10, lease=30, now=100)
    await store.events.renew("w1", [held.id], until=200)
    assert await store.events.claim("w2", 10, 30, now=150) == []


async def test_released_events_are_claimable_at_once(store: Store) -> None:
    await store.events.accept(new("r"))
    [held] = await store.events.claim("w1", 10, 30, now=100)
    await store.events.release("w1", [held.id])
    [again] = await store.events.claim("w2", 10, 30, now=100)
    assert again.id == held.id
    assert again.attempts == 0


async def test_finishing_teaches_the_room_and_later_answers_carry_it(store: Store) -> None:
    await store.events.accept(new("start", crm=None))
    [claimed] = await store.events.claim("w", 10, 30, now=100)
    learnt = done(crm_data={"contactId": "crm-9"}, stage=0, newest_message_at=99.5)
    assert await store.events.finish(claimed, "w", learnt)
    room = await store.events.room("R1")
    assert room is not None
    assert (room.crm_data, room.stage, room.newest_message_at) == ({"contactId": "crm-9"}, 0, 99.5)
    later = await store.events.accept(new("message", crm={"ok": True}))
    assert json.loads(later.answer) == {"ok": True, "contactId": "crm-9"}
    [next_claim] = await store.events.claim("w", 10, 30, now=101)
    assert next_claim.room == room


async def test_dead_letters_keep_their_history_and_can_be_replayed(store: Store) -> None:
    accepted = await store.events.accept(new("doomed"))
    for attempt in range(2):
        [claimed] = await store.events.claim("w", 10, 30, now=100 + attempt * 10)
        status = "failed" if attempt == 0 else "dead"
        await store.events.finish(claimed, "w", Finish(status=status, started_at=100, finished_at=101,
                                  error=f"boom {attempt}", next_attempt_at=110))  # fmt: skip
    dead = await store.events.find(status="dead")
    assert [e.id for e in dead] == [accepted.event_id]
    assert [
        (a.number, a.outcome, a.error) for a in await store.events.attempts(accepted.event_id)
    ] == [
        (1, "failed", "boom 0"),
        (2, "dead", "boom 1"),
    ]
    result = await store.events.replay(None, now=500)
    assert result.replayed == [accepted.event_id]
    [claimed] = await store.events.claim("w", 10, 30, now=500)
    assert claimed.attempts == 0
    assert await store.events.finish(claimed, "w", done())
    assert [a.number for a in await store.events.attempts(accepted.event_id)] == [1, 2, 3]


async def test_replay_explains_what_it_skips(store: Store) -> None:
    pending = await store.events.accept(new("p"))
    finished = await store.events.accept(new("d", room="B"))
    claims = await store.events.claim("w", 10, 30, now=100)
    finished_claim = next(c for c in claims if c.id == finished.event_id)
    await store.events.finish(finished_claim, "w", done(handlers_done=["h1"]))
    result = await store.events.replay([pending.event_id, finished.event_id, 999], now=200)
    assert result.replayed == []
    assert result.skipped == {
        pending.event_id: "already processing: it will be handled",
        finished.event_id: "done: every handler succeeded (use all handlers to run them again)",
        999: "no such event",
    }
    forced = await store.events.replay([finished.event_id], now=200, all_handlers=True)
    assert forced.replayed == [finished.event_id]
    [again] = [
        c for c in await store.events.claim("w", 10, 30, now=200) if c.id == finished.event_id
    ]
    assert again.handlers_done == frozenset()


async def test_find_filters_by_status_and_room(store: Store) -> None:
    for n in range(5):
        await store.events.accept(new(f"e{n}", room="A" if n % 2 else "B"))
    assert [e.room_id for e in await store.events.find(room_id="A")] == ["A", "A"]
    assert len(await store.events.find(status="pending", limit=3)) == 3
    assert await store.events.find(status="dead") == []
    assert (await store.events.get(12345)) is None


async def test_claims_from_many_workers_never_overlap(store: Store) -> None:
    for n in range(60):
        await store.events.accept(new(f"c{n}", room=f"R{n % 12}"))

    async def worker(name: str) -> list[ClaimedEvent]:
        got: list[ClaimedEvent] = []
        for _ in range(10):
            batch = await store.events.claim(name, 3, 30, now=100)
            got += batch
            for event in batch:
                assert await store.events.finish(event, name, done())
        return got

    claimed = [
        c for batch in await asyncio.gather(*(worker(f"w{i}") for i in range(4))) for c in batch
    ]
    ids = [c.id for c in claimed]
    assert len(ids) == len(set(ids)) == 60


async def test_concurrent_first_uses_wait_for_the_open_to_finish(store_url: str) -> None:
    store = Store(store_url)  # not opened: the first callers race to open it

    async def use(n: int) -> int:
        await store.connect()
        return (await store.events.accept(new(f"race{n}"))).event_id

    try:
        ids = await asyncio.gather(*(use(n) for n in range(20)))
    finally:
        await store.close()
    assert len(set(ids)) == 20


async def test_outcomes_finished_together_keep_each_event_apart(store: Store) -> None:
    # Concurrent finishes share one statement per step: each event must get its own values, a
    # lost lease must drop only its own outcome, and each room must learn what its event taught.
    for room in ("A", "B", "C", "D"):
        await store.events.accept(new(f"event of {room}", room=room, crm={"from": room}))
    a, b, c, d = await store.events.claim("w", 10, 30, now=100)
    outcomes = await asyncio.gather(
        store.events.finish(a, "w", done(at=101, crm_data={"contactId": "a"}, stage=1,
                                         handlers_done=["h1", "h2"])),
        store.events.finish(b, "w", Finish(status="failed", started_at=102, finished_at=103,
                                           error="CRM 503", next_attempt_at=160, deferred=True,
                                           handlers_done=["h1"])),
        store.events.finish(c, "someone else", done(at=104, crm_data={"contactId": "c"})),
        store.events.finish(d, "w", Finish(status="dead", started_at=105, finished_at=106,
                                           error="refused", stale=True)),
    )  # fmt: skip
    assert outcomes == [True, True, False, True]
    states = {e.id: e for e in await store.events.find(limit=10)}
    assert (states[a.id].status, states[a.id].handlers_done, states[a.id].finished_at) == (
        "done",
        ("h1", "h2"),
        pytest.approx(101.01),
    )
    assert (states[b.id].status, states[b.id].next_attempt_at, states[b.id].finished_at) == (
        "failed",
        160,
        None,
    )
    assert (states[c.id].status, states[c.id].attempts) == ("processing", 0)
    assert (states[d.id].status, states[d.id].stale, states[d.id].last_error) == (
        "dead",
        True,
        "refused",
    )
    assert [(r.number, r.outcome) for r in await store.events.attempts(b.id)] == [(1, "failed")]
    assert await store.events.attempts(c.id) == []
    room_a, room_c = await store.events.room("A"), await store.events.room("C")
    assert room_a is not None
    assert (room_a.crm_data, room_a.stage) == ({"contactId": "a"}, 1)
    assert room_c is None  # its outcome was dropped


async def test_the_same_event_twice_in_one_batch_counts_once(store: Store) -> None:
    await store.events.accept(new("ahead", room="A"))
    await store.events.accept(new("twice", room="B"))
    ahead, twice = await store.events.claim("w", 10, 30, now=100)
    # The first finish runs alone; the two that wait for it share the next batch.
    outcomes = await asyncio.gather(
        store.events.finish(ahead, "w", done()),
        store.events.finish(twice, "w", done(crm_data={"n": 1})),
        store.events.finish(twice, "w", done(crm_data={"n": 2})),
    )
    assert outcomes == [True, True, False]
    assert [r.number for r in await store.events.attempts(twice.id)] == [1]
    room = await store.events.room("B")
    assert room is not None
    assert room.crm_data == {"n": 1}


async def test_what_a_room_learns_adds_up_across_events(store: Store) -> None:
    await store.events.accept(new("first"))
    [first] = await store.events.claim("w", 10, 30, now=100)
    await store.events.finish(first, "w", done(crm_data={"contactId": "c-1"}, stage=1,
                                               newest_message_at=150.0))  # fmt: skip
    await store.events.accept(new("second"))
    [second] = await store.events.claim("w", 10, 30, now=101)
    await store.events.finish(
        second, "w", done(crm_data={"dealId": "d-1"}, newest_message_at=120.0)
    )
    room = await store.events.room("R1")
    assert room is not None
    assert (room.crm_data, room.stage, room.newest_message_at) == (
        {"contactId": "c-1", "dealId": "d-1"},
        1,  # an event that says nothing of the stage keeps it
        150.0,  # the newest message stays the newest
    )


async def test_claims_are_planned_afresh_each_time_on_postgresql(tmp_path: Path) -> None:
    # A claim's best plan changes as the backlog grows. Kept as a prepared statement, the plan
    # PostgreSQL made while the table was empty read every earlier event for each candidate:
    # 351 ms a claim with 2,143 pending, growing with the square of the backlog.
    with fresh_store_url("postgresql", tmp_path) as url:
        async with Store.open(f"{url}&pool_size=1") as store:  # one connection: the claims'
            for _ in range(10):  # psycopg prepares a statement run five times
                assert await store.events.claim("w", 10, 30, now=100) == []
                assert await store.outbox.claim("w", 10, 30, now=100) == []
            prepared = await store.database.run(
                lambda tx: tx.execute("SELECT statement FROM pg_prepared_statements").fetchall()
            )
    assert [row for row in prepared if "NOT EXISTS" in str(row[0])] == []
