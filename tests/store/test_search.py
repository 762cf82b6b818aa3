"""Searching events (the console's lists): each filter, time bounds, text, keyset paging; rooms
by latest activity; events per hour."""

from __future__ import annotations

import json

from omnihook.store import EventQuery, Finish, NewEvent, Store


def new(n: int, type_: str, room: str, text: str = "") -> NewEvent:
    body = json.dumps(
        {"type": type_, "_id": room, "n": n, "text": text}, ensure_ascii=False
    ).encode()
    return NewEvent(
        dedup_key=f"k{n}", room_id=room, type=type_, body=body, received_at=1000.0 + 60 * n
    )


async def test_every_filter_and_paging(store_url: str) -> None:
    async with Store.open(store_url) as store:
        assert await store.events.search(EventQuery(since=0)) == []
        for n in range(30):
            kind = "Message" if n % 3 else "LivechatSession"
            await store.events.accept(new(n, kind, f"R{n % 4}", "hello wörld" if n == 7 else ""))

        def ids(found: list) -> list[int]:  # type: ignore[type-arg]
            return [e.id for e in found]

        everything = await store.events.search(EventQuery(limit=500))
        assert len(everything) == 30
        assert ids(everything) == sorted(ids(everything), reverse=True)
        assert everything[0].body is not None
        closes = await store.events.search(EventQuery(type="LivechatSession"))
        assert len(closes) == 10
        assert {e.type for e in closes} == {"LivechatSession"}
        assert {e.room_id for e in await store.events.search(EventQuery(room_id="R1"))} == {"R1"}
        [found] = await store.events.search(EventQuery(text="wörld"))
        assert json.loads(found.body or b"")["n"] == 7
        # Received from minute 10 (included) to minute 20 (excluded).
        window = await store.events.search(EventQuery(since=1600, until=2200))
        assert sorted(json.loads(e.body or b"")["n"] for e in window) == list(range(10, 20))
        assert await store.events.search(EventQuery(since=10**9)) == []
        first_page = await store.events.search(EventQuery(limit=12))
        second_page = await store.events.search(EventQuery(limit=12, before_id=first_page[-1].id))
        assert len(second_page) == 12
        assert ids(first_page + second_page) == ids(everything)[:24]
        newer = await store.events.search(EventQuery(after_id=everything[3].id))
        assert ids(newer) == ids(everything)[:3][::-1]  # catching up: oldest first
        pending = await store.events.search(
            EventQuery(status="pending", type="Message", room_id="R2")
        )
        assert {(e.status, e.type, e.room_id) for e in pending} == {("pending", "Message", "R2")}


async def test_rooms_by_latest_activity_and_events_per_hour(store_url: str) -> None:
    async with Store.open(store_url) as store:
        for n in range(6):
            await store.events.accept(new(n, "Message", f"R{n % 2}"))
        for claimed in await store.events.claim("w", 10, 30, now=5000):
            at = 5000 + claimed.id
            await store.events.finish(claimed, "w", Finish("done", at, at, stage=1))
        rooms = await store.events.rooms()
        assert [r.room_id for r in rooms] == ["R1", "R0"]  # R1's last event finished last
        assert rooms[0].newest is not None
        assert json.loads(rooms[0].newest.body or b"")["n"] == 5
        assert [r.room_id for r in await store.events.rooms(before=rooms[0].updated_at)] == ["R0"]
        hours = await store.events.received_per_hour(since=0, now=3600 * 2 + 5)
        assert hours == [(0, 6), (3600, 0), (7200, 0)]  # all six within minutes 16-21
