"""Store watches: a callback soon after another connection commits, on SQLite and on the real
PostgreSQL, and nothing lost when the watch starts before the database exists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from omnihook.store import OutboxItem, Store
from omnihook.store.config import parse_store_url
from omnihook.store.events import NewEvent
from omnihook.store.watching import StoreWatch, channel

from ..store_urls import fresh_store_url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def new_event(key: str) -> NewEvent:
    return NewEvent(
        dedup_key=key,
        room_id="R1",
        type="LivechatSessionStart",
        body=b"{}",
        received_at=100.0,
    )


async def test_accepting_elsewhere_calls_the_watch(store_url: str, store: Store) -> None:
    heard = asyncio.Event()
    async with Store.open(store_url) as other, other.events.watch(heard.set):
        await asyncio.sleep(0.3)  # listening (PostgreSQL) and the first reading taken (SQLite)
        heard.clear()  # a watch announces once when it starts: it may have missed something
        await store.events.accept(new_event("k1"))
        await asyncio.wait_for(heard.wait(), 5)


async def test_a_commit_that_stores_no_event_is_not_announced_on_postgresql(
    tmp_path: Path,
) -> None:
    # (SQLite's watch sees every commit; there a worker woken for nothing finds nothing.)
    calls: list[None] = []
    with fresh_store_url("postgresql", tmp_path) as url:
        async with (
            Store.open(url) as store,
            Store.open(url) as other,
            other.events.watch(lambda: calls.append(None)),
        ):
            await asyncio.sleep(0.3)
            calls.clear()
            await store.outbox.put(OutboxItem("http://crm/hook", b"{}", "R1", None, 100.0))
            await store.events.accept(new_event("k1"))
            await store.events.accept(new_event("k1"))  # a duplicate: nothing new
            await asyncio.sleep(0.5)
    assert len(calls) == 1


async def test_a_watch_started_before_its_database_exists_keeps_trying(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    heard = asyncio.Event()
    async with Store.open(f"sqlite:///{path}") as placeholder:
        watch = StoreWatch(placeholder.database, "omnihook_events", heard.set, retry_after=0.05)
    path.unlink()
    async with watch:
        await asyncio.sleep(0.2)  # the file is missing: the watch retries quietly
        async with Store.open(f"sqlite:///{path}") as store:
            await asyncio.sleep(0.3)
            heard.clear()
            await store.events.accept(new_event("k1"))
            await asyncio.wait_for(heard.wait(), 5)


def test_each_schema_has_its_own_channel_within_postgresql_limits() -> None:
    plain = channel(parse_store_url("postgresql://db/app"), "events")
    tenant = channel(parse_store_url("postgresql://db/app?schema=tenant_1"), "events")
    long = channel(parse_store_url(f"postgresql://db/app?schema={'s' * 60}"), "events")
    assert (plain, tenant) == ("omnihook_events", "omnihook_events_tenant_1")
    assert len(long.encode()) <= 63
    assert long != channel(parse_store_url(f"postgresql://db/app?schema={'s' * 61}"), "events")
