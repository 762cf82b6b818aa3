"""A small, fast HTTP/1.1 load generator (its own process): keep-alive connections, each sending
the next request as soon as the previous answer is read, for a fixed time.

    python -m bench.load URL --payload message|close --concurrency 64 --duration 10 --token T

Bodies are distinct (a counter inside the message, see ``bench.payloads``), so a store never sees
a duplicate. Prints one JSON line: requests, errors, seconds, latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

from .payloads import PAYLOADS, Payload


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

    def percentile(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="message")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(
        json.dumps(
            asyncio.run(
                _run(
                    args.url,
                    PAYLOADS[args.payload],
                    args.concurrency,
                    args.duration,
                    args.token,
                    args.warmup,
                )
            )
        )
    )


if __name__ == "__main__":
    main()
