"""How fast the console's event lists answer over a large store: ms per query, one process.

    uv run python -m bench.console [--events 1000000]

A SQLite store is filled with ``--events`` events (written in bulk, as a busy bridge would have
them: many rooms, most done, a few dead, nine types, received a second apart), then each query
the Events and Chats pages make runs several times; the best time is kept. The reference is the
first page with no filter, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from omnihook.store import EventQuery, Store

from .payloads import encode, message_event

__all__ = ["measure_console"]

TYPES = ("Message", "Message", "Message", "Message", "LivechatSessionStart", "LivechatSession",
         "LivechatSessionTaken", "LivechatSessionQueued", "LeadCapture")  # fmt: skip


async def _fill(store: Store, count: int) -> float:
    body = encode(message_event())
    start = 1_700_000_000.0

    def rows(first: int, last: int) -> list[tuple[Any, ...]]:
        found = []
        for n in range(first, last):
            status = "dead" if n % 997 == 0 else "done"
            room = f"R{n % 50_000:05d}"
            found.append((f"k{n}", room, room, TYPES[n % len(TYPES)],
                          body.replace(b'"msg":"', b'"msg":"note %d ' % n, 1), start + n, status, start + n, "{}",
                          None))  # fmt: skip
        return found

    def insert(tx: Any, batch: list[tuple[Any, ...]]) -> None:
        for at in range(0, len(batch), 500):  # 500 rows of 10 values: within SQLite's limits
            chunk = batch[at : at + 500]
            tx.execute(
                "INSERT INTO events (dedup_key, room_key, room_id, type, body, received_at, status, "
                "next_attempt_at, answer, identity) VALUES "
                + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk),
                [value for row in chunk for value in row],
            )

    began = time.perf_counter()
    for first in range(0, count, 20_000):
        batch = rows(first, min(count, first + 20_000))
        await store.database.run(lambda tx, batch=batch: insert(tx, batch))
    await store.database.run(lambda tx: tx.execute("ANALYZE"))
    return time.perf_counter() - began


async def _best(run: Callable[[], Awaitable[object]], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        await run()
        best = min(best, time.perf_counter() - began)
    return best * 1000


async def _run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        async with Store.open(
            f"sqlite:///{Path(directory) / 'console.db'}?synchronous=off"
        ) as store:
            filled = await _fill(store, count)
            events = store.events
            middle = 1_700_000_000.0 + count // 2
            deep = (await events.search(EventQuery(limit=1)))[0].id - count // 2
            queries: dict[str, Callable[[], Awaitable[object]]] = {
                "first page, no filter": lambda: events.search(EventQuery()),
                "a page half-way down (keyset)": lambda: events.search(EventQuery(before_id=deep)),
                "dead events": lambda: events.search(EventQuery(status="dead")),
                "one type (Chat Close)": lambda: events.search(EventQuery(type="LivechatSession")),
                "one room": lambda: events.search(EventQuery(room_id="R01234")),
                "an hour, half-way back": lambda: events.search(
                    EventQuery(since=middle, until=middle + 3600)),
                "text, in every event": lambda: events.search(EventQuery(text="note")),
                "text, in one old event (reads 100,000)": lambda: events.search(
                    EventQuery(text="note 7 ")),
                "text, in one room": lambda: events.search(
                    EventQuery(room_id="R01234", text="note")),
                "events per hour, last 24 h": lambda: events.received_per_hour(
                    1_700_000_000.0 + count - 86400, 1_700_000_000.0 + count),
            }  # fmt: skip
            timings = {name: await _best(query) for name, query in queries.items()}
    return {"events": count, "fill_seconds": filled, "ms": timings}


def measure_console(count: int = 1_000_000) -> dict[str, Any]:
    """ms per console query over a store of ``count`` events."""
    return asyncio.run(_run(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    print(json.dumps(measure_console(parser.parse_args().events)))


if __name__ == "__main__":
    main()
