"""A sender holding a backlog: how much memory does it take, and does it grow with the backlog?

    python -m bench.backlog --pending 100000

Enqueues ``--pending`` deliveries into a fresh SQLite outbox (64 producers at a time) while the
dispatcher runs against a receiver that accepts connections and never answers (so 64 deliveries
stay in flight and the rest wait), holds them for a few seconds, and prints one JSON line: the
resident set now and at its peak, in MiB, and the enqueue rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
from pathlib import Path

from omnihook.sender import Sender
from omnihook.store import favour_database_threads

from .procs import peak_rss_mb
from .sending import _workers


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    return 0.0


async def hold(pending: int, seconds: float) -> dict[str, float]:
    favour_database_threads()
    with socket.socket() as silent, tempfile.TemporaryDirectory() as directory:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1024)  # never accepted: requests wait for the timeout
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/rocketchat"
        store = f"sqlite:///{Path(directory) / 'outbox.db'}"
        async with Sender(url, token="t", outbox=store, timeout=60, concurrency=64) as sender:
            started = time.perf_counter()

            async def enqueue(body: bytes) -> None:
                await sender.enqueue(body)

            await _workers(pending, 64, enqueue)
            enqueue_seconds = time.perf_counter() - started
            await asyncio.sleep(seconds)
            counts = await sender.outbox.outbox.counts() if sender.outbox else {}
            rss = _rss_now_mb()
            await sender.aclose(grace=0)
    return {
        "pending": pending,
        "held": counts.get("pending", 0) + counts.get("sending", 0),
        "rss_mb": rss,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
        "peak_rss_mb": peak_rss_mb(os.getpid()),
        "enqueued_per_second": pending / enqueue_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--hold", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(hold(args.pending, args.hold))))


if __name__ == "__main__":
    main()
