"""A small, fast HTTP/1.1 load generator (its own process): keep-alive connections, each sending
the next request as soon as the previous answer is read, for a fixed time.

    python -m bench.load URL --payload message [--payload close] --concurrency 64 --duration 10 --token T

Bodies are distinct (a counter inside the message, see ``bench.payloads``), so a store never sees
a duplicate. Each payload in turn: a warm-up, then the measured load. Prints one JSON line, an
object whose keys are the payloads: requests, errors, seconds, latency percentiles of each (and,
with ``--pid``, the server's peak RSS once that payload's load ended).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

from .payloads import PAYLOADS, Payload
from .procs import peak_rss_mb
from .stats import percentile_ms


async def _connection(host: str, port: int, path: str, token: str, payload: Payload, offset: int,
                      step: int, until: float, latencies: list[float], errors: list[int]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"X-RocketChat-Livechat-Token: {token}\r\n").encode()  # fmt: skip
    index = offset
    try:
        while time.perf_counter() < until:
            body = payload.body(index)
            index += step
            started = time.perf_counter()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status_line[9:12] != b"200":
                errors.append(int(status_line[9:12]))
    finally:
        writer.close()


async def _runs(url: str, payloads: list[str], concurrency: int, duration: float, token: str,
                warmup: float, pid: int | None) -> dict[str, dict[str, float]]:  # fmt: skip
    results = {}
    for key in payloads:
        results[key] = await _run(url, PAYLOADS[key], concurrency, duration, token, warmup)
        if pid is not None:
            results[key]["peak_rss_mb"] = peak_rss_mb(pid)
    return results


async def _run(
    url: str, payload: Payload, concurrency: int, duration: float, token: str, warmup: float
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    # Warm up (connections, JIT-free but caches, the server's first store commits), then measure.
    warm: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, parts.path, token, payload, 10_000_000 + i, concurrency,
                                       start + warmup, warm, []) for i in range(concurrency)))  # fmt: skip
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, parts.path, token, payload, i, concurrency,
                                       start + duration, latencies, errors) for i in range(concurrency)))  # fmt: skip
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--payload", choices=sorted(PAYLOADS), action="append")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--token", default="")
    parser.add_argument("--pid", type=int, help="The server's: adds its peak RSS so far (MiB).")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    runs = _runs(args.url, args.payload or ["message"], args.concurrency, args.duration,
                 args.token, args.warmup, args.pid)  # fmt: skip
    print(json.dumps(asyncio.run(runs)))


if __name__ == "__main__":
    main()
