"""A steady (open-loop) load of simulated chats: each event is posted at its set time, whatever
the server answered before, and each room's events in their order.

    python -m bench.steady URL --pool FILE --rate 500 --seconds 60 --warmup 2 --token T --record FILE

The pool (``bench.e2e.ChatPool``) holds simulated chats' events, one a line: the chat's number,
the SHA-256 of the body (the store's dedup key) and the body. Event ``j`` is due at
``start + j / rate`` and goes on lane ``j mod K`` (``K = rate × ROOM_GAP``); a lane plays one chat
after another, so that a room's events are about ``ROOM_GAP`` seconds apart, and posts a room's
next event only once its previous one was answered (were that late, the next would go late: the
lag behind the schedule is reported). Requests share up to ``--connections`` keep-alive
connections, opened as needed.

Events due in the first ``--warmup`` seconds are sent but not measured. For each measured event,
``--record`` gets a line: its key, the wall-clock time (``time.time()``) it was posted, the answer's
status. Prints one JSON line: counts, the rate achieved, the lag behind the schedule and the
answers' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from .stats import percentile_ms

__all__ = ["ROOM_GAP", "chats_needed", "play", "read_pool"]

ROOM_GAP = 1.0
"""Seconds between two events of a room."""


def chats_needed(rate: float, seconds: float) -> int:
    """How many chats of the pool a run at ``rate`` for ``seconds`` may take: one per lane to
    begin with, then about one per 12 events (the simulator's chats hold 12 events on average,
    29 at most)."""
    return max(1, round(rate * ROOM_GAP)) + int(rate * seconds / 10) + 50


Chat = deque[tuple[str, bytes]]


def read_pool(path: Path, chats: int) -> list[Chat]:
    """The first ``chats`` chats of the pool (fewer if it holds fewer)."""
    found: list[Chat] = []
    current = b""
    with path.open("rb") as pool:
        for line in pool:
            number, key, body = line.rstrip(b"\n").split(b"\t", 2)
            if number != current:
                if len(found) == chats:
                    break
                found.append(deque())
                current = number
            found[-1].append((key.decode(), body))
    return found


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return int(status_line[9:12])

    def close(self) -> None:
        self.writer.close()


IDLE_LIMIT = 4.0
"""Seconds a connection may sit idle before the pool drops it instead of reusing it: below the
server's keep-alive timeout (5 s), after which a reused connection would be found closed."""


class _Pool:
    """Keep-alive connections, opened as needed up to ``limit``."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[_Connection, float]] = []
        self.open = self.most = 0
        self.freed = asyncio.Event()

    async def acquire(self) -> _Connection:
        while not self.idle and self.open >= self.limit:
            self.freed.clear()
            await self.freed.wait()
        while self.idle:
            connection, released = self.idle.pop()
            if time.monotonic() - released < IDLE_LIMIT:
                return connection
            connection.close()
            self.open -= 1
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            return _Connection(*await asyncio.open_connection(self.host, self.port))
        except BaseException:
            self.open -= 1
            self.freed.set()
            raise

    def release(self, connection: _Connection, broken: bool = False) -> None:
        if broken:
            connection.close()
            self.open -= 1
        else:
            self.idle.append((connection, time.monotonic()))
        self.freed.set()

    def close(self) -> None:
        for connection, _ in self.idle:
            connection.close()


async def play(url: str, chats: list[Chat], rate: float, seconds: float, warmup: float,
               token: str, connections: int) -> tuple[dict[str, float], list[tuple[str, float, int]]]:  # fmt: skip
    """Post the pool's events at ``rate`` for ``warmup + seconds``; the summary and, per
    measured event, its key, when it was posted and the answer's status."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"X-RocketChat-Livechat-Token: {token}\r\n").encode()  # fmt: skip
    pool = _Pool(host, port, connections)
    lanes = max(1, round(rate * ROOM_GAP))
    total, warm = int(rate * (warmup + seconds)), int(rate * warmup)
    waiting = deque(chats)
    sent: list[tuple[str, float, int]] = []
    lags: list[float] = []
    latencies: list[float] = []
    short = 0
    start = time.perf_counter() + 0.1

    async def lane(index: int) -> None:
        nonlocal short
        chat: Chat = deque()
        for slot in range(index, total, lanes):
            if not chat:
                if not waiting:
                    short += 1
                    return
                chat = waiting.popleft()
            key, body = chat.popleft()
            due = start + slot / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            connection = await pool.acquire()
            posted, began = time.time(), time.perf_counter()
            try:
                status = await connection.post(head, body)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                pool.release(connection, broken=True)
            else:
                pool.release(connection)
            if slot >= warm:
                sent.append((key, posted, status))
                lags.append(began - due)
                latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(lane(index) for index in range(min(lanes, total))))
    ended = time.perf_counter()
    pool.close()
    lags.sort()
    latencies.sort()
    measured_from = start + warmup
    summary = {
        "events": len(sent),
        "errors": sum(1 for _, _, status in sent if status != 200),
        "rate": rate,
        "per_second": len(sent) / max(ended - measured_from, 1e-9),
        "lanes": lanes,
        "connections": pool.most,
        "short": short,
        "lag_p50_ms": percentile_ms(lags, 0.50),
        "lag_p99_ms": percentile_ms(lags, 0.99),
        "lag_max_ms": (lags[-1] if lags else 0.0) * 1000,
        "answer_p50_ms": percentile_ms(latencies, 0.50),
        "answer_p99_ms": percentile_ms(latencies, 0.99),
    }
    return summary, sent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True, help="Events per second.")
    parser.add_argument("--seconds", type=float, required=True, help="Measured seconds.")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--token", default="")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    chats = read_pool(args.pool, chats_needed(args.rate, args.warmup + args.seconds))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    summary, sent = asyncio.run(play(args.url, chats, args.rate, args.seconds, args.warmup,
                                     args.token, args.connections))  # fmt: skip
    with args.record.open("w") as record:
        record.writelines(f"{key}\t{posted!r}\t{status}\n" for key, posted, status in sent)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
