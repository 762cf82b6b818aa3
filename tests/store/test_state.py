"""Shared state and backlog: what processes sharing a store tell each other, and what is left."""

from __future__ import annotations

import json

from omnihook.contracts import parse_event, samples
from omnihook.store import NewEvent, Store


async def test_state_records_are_replaced_and_found_by_prefix(store_url: str) -> None:
    async with Store.open(store_url) as store:
        assert await store.state.get("reconcile") is None
        await store.state.put("reconcile", {"outcome": "failed", "error": "é \udc80"}, 10.0)
        await store.state.put("reconcile", {"outcome": "ok", "rebuilt": 3}, 20.0)
        await store.state.put("circuit:hubspot", {"state": "open"}, 15.0)
        await store.state.put("circuit:zoho", {"state": "closed"}, 16.0)
        last = await store.state.get("reconcile")
        assert last is not None
        assert (last.value, last.updated_at) == ({"outcome": "ok", "rebuilt": 3}, 20.0)
        assert [r.name for r in await store.state.find("circuit:")] == [
            "circuit:hubspot",
            "circuit:zoho",
        ]
        assert await store.state.get("circuit:") is None  # a prefix is no name


async def test_the_backlog_counts_what_is_not_done_and_the_oldest_wait(store_url: str) -> None:
    async with Store.open(store_url) as store:
        empty = await store.events.backlog()
        assert empty.counts == {"pending": 0, "processing": 0, "failed": 0, "dead": 0}
        assert (empty.oldest_at, empty.oldest_age(100.0)) == (None, 0.0)
        for n, name in enumerate(["chat-start", "visitor-message", "chat-close"]):
            body = json.dumps(samples.sample(name)).encode()
            event = parse_event(body)
            await store.events.accept(NewEvent(dedup_key=f"k{n}", room_id=event.room_id,
                                               type=event.type, body=body,
                                               received_at=100.0 + n))  # fmt: skip
        assert len(await store.events.claim("w", 1, 30, now=200.0)) == 1
        backlog = await store.events.backlog()
        assert backlog.counts == {"pending": 2, "processing": 1, "failed": 0, "dead": 0}
        assert (backlog.oldest_at, backlog.oldest_age(150.0)) == (100.0, 50.0)
        assert (await store.outbox.backlog()).counts["pending"] == 0
