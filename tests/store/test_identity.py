"""One event, whatever its bytes: a delivery with the identity of a stored event is a duplicate of
it, whichever came first (a rebuilt event, a late real delivery); and where each came from."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from omnihook.store import EventSource, NewEvent, Store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def new(
    body: str,
    identity: str | None,
    source: EventSource = "webhook",
    crm: dict[str, str] | None = None,
) -> NewEvent:
    raw = body.encode()
    return NewEvent(hashlib.sha256(raw).hexdigest(), "R1", "LivechatSession", raw, 100.0,
                    previous_crm_data=crm, identity=identity, source=source)  # fmt: skip


async def test_a_rebuilt_event_after_the_real_one_is_a_duplicate(store: Store) -> None:
    real = await store.events.accept(new('{"real":1}', "close:R1:t", crm={"id": "c-1"}))
    rebuilt = await store.events.accept(new('{"rebuilt":1}', "close:R1:t", "reconcile"))
    assert not real.duplicate
    assert rebuilt.duplicate
    assert (rebuilt.event_id, rebuilt.answer) == (real.event_id, real.answer)
    [stored] = await store.events.find()
    assert (stored.source, stored.identity) == ("webhook", "close:R1:t")


async def test_a_late_real_delivery_after_its_rebuild_is_a_duplicate(store: Store) -> None:
    rebuilt = await store.events.accept(new('{"rebuilt":1}', "close:R1:t", "reconcile"))
    late = await store.events.accept(new('{"real":1}', "close:R1:t"))
    assert late.duplicate
    assert late.event_id == rebuilt.event_id
    [stored] = await store.events.find(source="reconcile")
    assert stored.id == rebuilt.event_id
    assert await store.events.find(source="webhook") == []
    [claimed] = await store.events.claim("w", 5, 30, now=2e9)
    assert claimed.source == "reconcile"  # handlers can tell (context.source)


async def test_the_same_event_twice_in_one_batch_is_stored_once(store: Store) -> None:
    deliveries = [new(f'{{"bytes":{n}}}', "message:R1:m1:t") for n in range(20)]
    deliveries += [new(f'{{"other":{n}}}', f"message:R1:m{n + 2}:t") for n in range(20)]
    results = await asyncio.gather(*(store.events.accept(d) for d in deliveries))
    same = {r.event_id for r in results[:20]}
    assert len(same) == 1
    assert sum(not r.duplicate for r in results[:20]) == 1
    assert len({r.event_id for r in results[20:]}) == 20
    assert len(await store.events.find(limit=100)) == 21


async def test_events_without_an_identity_never_merge(store: Store) -> None:
    first = await store.events.accept(new('{"edit":1}', None))
    second = await store.events.accept(new('{"edit":2}', None))
    again = await store.events.accept(new('{"edit":1}', None))
    assert first.event_id != second.event_id
    assert (again.event_id, again.duplicate) == (first.event_id, True)  # same bytes still dedup


async def test_identities_per_room(store: Store) -> None:
    await store.events.accept(new('{"a":1}', "close:R1:t"))
    await store.events.accept(new('{"b":1}', None))
    assert await store.events.identities(["R1", "R2"]) == {"R1": {"close:R1:t"}}


async def test_one_process_holds_a_named_lock_until_it_expires(store: Store) -> None:
    assert await store.locks.hold("reconcile", "a", until=110, now=100)
    assert not await store.locks.hold("reconcile", "b", until=115, now=105)
    assert await store.locks.hold("reconcile", "a", until=130, now=120)  # renewed
    assert not await store.locks.hold("reconcile", "b", until=135, now=125)
    assert await store.locks.hold("reconcile", "b", until=150, now=131)  # a's lock expired
    await store.locks.release("reconcile", "a")  # not a's any more: nothing happens
    assert not await store.locks.hold("reconcile", "a", until=160, now=140)
    await store.locks.release("reconcile", "b")
    assert await store.locks.hold("reconcile", "a", until=160, now=141)


def back_to_version_4(tx: Any) -> None:
    """The schema before identities (what steps 5 and 6 add, taken away)."""
    tx.execute("DELETE FROM omnihook_schema WHERE version >= 5")
    tx.execute("DROP TABLE omnihook_state")
    tx.execute("ALTER TABLE events DROP COLUMN deferrals")
    tx.execute("DROP INDEX events_type")
    tx.execute("DROP INDEX rooms_updated")
    tx.execute("DROP INDEX crm_links_key")
    tx.execute("ALTER TABLE events DROP COLUMN trace_context")
    tx.execute("DROP TABLE omnihook_locks")
    tx.execute("DROP INDEX events_identity")
    tx.execute("ALTER TABLE events DROP COLUMN identity")
    tx.execute("ALTER TABLE events DROP COLUMN source")


async def test_events_stored_before_identities_get_theirs_on_upgrade(store_url: str) -> None:
    import json

    from omnihook.contracts import samples

    close = json.dumps(samples.sample("chat-close")).encode()
    async with Store.open(store_url) as store:
        await store.events.accept(new(close.decode(), None))  # as an older omnihook stored it
        await store.database.run(lambda tx: tx.execute("UPDATE events SET identity = NULL"))
        await store.database.run(back_to_version_4)
    async with Store.open(store_url) as upgraded:
        [old] = await upgraded.events.find()
        assert old.identity == "close:hX4Lq2rNwPZ8Kc7Ry:2025-03-14T09:36:00.000Z"
        # A retry of the old delivery and a rebuild of it, in one batch: one event, no error.
        retry = new(close.decode(), old.identity)
        rebuild = new('{"rebuilt": true}', old.identity, "reconcile")
        results = await asyncio.gather(
            upgraded.events.accept(retry), upgraded.events.accept(rebuild)
        )
        assert [(r.event_id, r.duplicate) for r in results] == [(old.id, True), (old.id, True)]
