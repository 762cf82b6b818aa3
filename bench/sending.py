"""Sender throughput against a fast local sink (``bench.sink``), one mode per process:

    python -m bench.sending MODE URL --count N --concurrency C [--store URL]

MODE: ``aiohttp`` and ``httpx`` (raw client loops, the baselines), ``send`` (``Sender.send``),
``outbox`` (``Sender.enqueue`` of every delivery, then ``drain``; timed from the first enqueue to
the last delivery). Prints one JSON line: deliveries, seconds, per_second, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from omnihook.sender import Sender
from omnihook.store import favour_database_threads

from .payloads import PAYLOADS
from .procs import peak_rss_mb
from .servers import TOKEN

_HEADERS = {"Content-Type": "application/json", "X-RocketChat-Livechat-Token": TOKEN}
_BODY = PAYLOADS["message"]


async def _workers(count: int, concurrency: int, post: Callable[[bytes], Awaitable[None]]) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await post(_BODY.body(index))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def raw_aiohttp(url: str, count: int, concurrency: int) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(body: bytes) -> None:
            async with session.post(url, data=body, headers=_HEADERS) as response:
                await response.read()
                assert response.status == 200

        await _workers(count, concurrency, post)


async def raw_httpx(url: str, count: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def post(body: bytes) -> None:
            response = await client.post(url, content=body, headers=_HEADERS)
            assert response.status_code == 200

        await _workers(count, concurrency, post)


async def sender_send(url: str, count: int, concurrency: int) -> None:
    async with Sender(url, token=TOKEN, max_connections=concurrency) as sender:

        async def post(body: bytes) -> None:
            delivery = await sender.send(body)
            assert delivery.ok, delivery.error

        await _workers(count, concurrency, post)


async def sender_outbox(url: str, count: int, concurrency: int, store: str) -> None:
    favour_database_threads()  # as the README advises for a process that runs an outbox
    async with Sender(url, token=TOKEN, outbox=store, concurrency=concurrency) as sender:

        async def enqueue(body: bytes) -> None:
            await sender.enqueue(body)

        await _workers(count, concurrency, enqueue)
        await sender.drain()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["aiohttp", "httpx", "send", "outbox"])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--store")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    runs = {
        "aiohttp": lambda: raw_aiohttp(args.url, args.count, args.concurrency),
        "httpx": lambda: raw_httpx(args.url, args.count, args.concurrency),
        "send": lambda: sender_send(args.url, args.count, args.concurrency),
        "outbox": lambda: sender_outbox(args.url, args.count, args.concurrency, args.store),
    }
    started = time.perf_counter()
    asyncio.run(runs[args.mode]())
    elapsed = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    print(json.dumps({"deliveries": args.count, "seconds": elapsed,
                      "per_second": args.count / elapsed, "peak_rss_mb": peak_rss_mb(os.getpid())}))  # fmt: skip


if __name__ == "__main__":
    main()
