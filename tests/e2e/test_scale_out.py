"""Two receiver processes and three worker processes on one store, thousands of events over many
rooms, duplicates sent on purpose (also to both receivers at once): every event handled exactly
once, each room in order. Runs on SQLite (processes share the file) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import aiohttp

from omnihook.contracts import TOKEN_HEADER

from ..conftest import free_port
from ..processes import OmnihookProcess, message, query_one, read_effects, write_hooks

ROOMS = 80
EVENTS_PER_ROOM = 25
DUPLICATE_SHARE = 0.2
TOKEN = "scale-token"


async def play(urls: list[str], rooms: int, per_room: int, seed: int) -> int:
    """Each room's events in order (the next one after the previous got its 200), rooms in
    parallel, alternating receivers; some events also sent to both receivers at once."""
    rng = random.Random(seed)
    duplicates = 0
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(url: str, body: bytes) -> None:
            for _ in range(50):  # 503 means "try again", as Rocket.Chat would
                async with session.post(
                    url,
                    data=body,
                    headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"},
                ) as response:
                    if response.status == 200:
                        return
                    assert response.status == 503, await response.text()
                await asyncio.sleep(0.05)
            raise AssertionError("receiver kept answering 503")

        async def room(index: int) -> None:
            nonlocal duplicates
            for n in range(per_room):
                body = json.dumps(message(f"R{index}", n)).encode()
                first = urls[(index + n) % 2]
                if rng.random() < DUPLICATE_SHARE:
                    duplicates += 1
                    await asyncio.gather(post(first, body), post(urls[(index + n + 1) % 2], body))
                else:
                    await post(first, body)

        await asyncio.gather(*(room(index) for index in range(rooms)))
    return duplicates


def count_done(store_url: str, tmp_path: Path) -> tuple[int, int]:
    total, done = query_one(
        store_url,
        tmp_path,
        "SELECT COUNT(*), SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) FROM {t}events",
    )
    return int(total), int(done or 0)


def test_two_receivers_three_workers_exactly_once_in_order(store_url: str, tmp_path: Path) -> None:
    effects = write_hooks(tmp_path)
    env = {"OMNIHOOK_TOKEN": TOKEN, "OMNIHOOK_STORE": store_url, "EFFECTS_DIR": str(effects)}
    ports = [free_port(), free_port()]
    receivers = [
        OmnihookProcess(
            ["serve", "--app", "hooks:router", "--no-worker", "--port", str(port)],
            tmp_path,
            env,
            port,
        )
        for port in ports
    ]
    workers = [
        OmnihookProcess(["worker", "--app", "hooks:router", "--concurrency", "8"], tmp_path, env)
        for _ in range(3)
    ]
    total = ROOMS * EVENTS_PER_ROOM
    try:
        for process in receivers + workers:
            process.start()
        started = time.monotonic()
        duplicates = asyncio.run(
            play(
                [f"http://127.0.0.1:{p}/rocketchat" for p in ports], ROOMS, EVENTS_PER_ROOM, seed=7
            )
        )
        deadline = time.monotonic() + 120
        while count_done(store_url, tmp_path) != (total, total):
            assert time.monotonic() < deadline, (
                f"not all handled: {count_done(store_url, tmp_path)}"
            )
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        for process in receivers + workers:
            process.stop()
    done = read_effects(effects)
    assert duplicates > total * DUPLICATE_SHARE / 2
    # Exactly once: every (room, n) once, no execution twice.
    assert len(done) == total, f"{len(done) - total} extra executions"
    assert {(e["room"], e["n"]) for e in done} == {
        (f"R{r}", n) for r in range(ROOMS) for n in range(EVENTS_PER_ROOM)
    }
    # In order per room, across the three workers.
    by_room: dict[str, list[dict[str, int]]] = defaultdict(list)
    for effect in done:
        by_room[effect["room"]].append(effect)
    for room, room_effects in by_room.items():
        ordered = [e["n"] for e in sorted(room_effects, key=lambda e: e["t"])]
        assert ordered == list(range(EVENTS_PER_ROOM)), room
    assert not any(e["stale"] for e in done)
    assert len({e["pid"] for e in done}) == 3  # every worker took part
    print(f"\n{total} events (+{duplicates} duplicates) handled in {elapsed:.1f} s")
