"""What the benchmark's smoke run (``uv run python -m bench --smoke``, run by CI) cannot see: that
the steady load of the end-to-end part keeps its rate and each room's order. A wrong order would
only make omnihook flag events ``stale``, and a slipping schedule a lower rate, neither of which
fails a run."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

from bench.e2e import ChatPool
from bench.steady import chats_needed, play, read_pool


async def test_the_steady_load_keeps_its_rate_and_each_rooms_order(tmp_path: Path) -> None:
    rate, seconds, warmup = 200.0, 1.0, 0.2
    pool = ChatPool(tmp_path / "chats.tsv")
    pool.ensure(chats_needed(rate, warmup + seconds))
    chats = read_pool(pool.path, chats_needed(rate, warmup + seconds))
    place = {key: (chat, index) for chat, events in enumerate(chats)
             for index, (key, _) in enumerate(events)}  # fmt: skip
    arrived: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))  # fmt: skip
                arrived.append(hashlib.sha256(await reader.readexactly(length)).hexdigest())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        summary, sent = await play(f"http://127.0.0.1:{port}/rocketchat", chats, rate, seconds,
                                   warmup, "t", connections=16)  # fmt: skip

    assert summary["events"] == len(sent) == int(rate * seconds)
    assert not summary["errors"]
    assert not summary["short"]
    assert len(arrived) == int(rate * (warmup + seconds))
    assert abs(summary["per_second"] - rate) < 0.1 * rate
    assert summary["lag_p99_ms"] < 50
    next_index: dict[int, int] = {}
    for key in arrived:  # every chat from its first event on, none skipped, none reordered
        chat, index = place[key]
        assert index == next_index.get(chat, 0)
        next_index[chat] = index + 1
    assert len(next_index) > 100  # many rooms at once: a room's events are a second apart
