"""Receiver throughput: each target alone in its own uvicorn process, the load generator
(``bench.load``) in another, the same payloads, concurrency and duration for every target."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .procs import free_port, peak_rss_mb, python_json, start_server, stop
from .servers import TOKEN

__all__ = ["ReceiverTarget", "receiver_targets", "run_receiver"]


@dataclass(frozen=True)
class ReceiverTarget:
    key: str
    name: str
    factory: str
    store: str | None = None
    processes: int = 1


def receiver_targets(sqlite_url: str, postgres_url: str | None) -> list[ReceiverTarget]:
    targets = [
        ReceiverTarget("bare", "bare Starlette (reads the body)", "bare"),
        ReceiverTarget("fastapi", "hand-written FastAPI (token, pydantic)", "fastapi_handwritten"),
        ReceiverTarget("inline", "omnihook, no store (inline)", "inline"),
        ReceiverTarget("sqlite", "omnihook, SQLite store", "stored", sqlite_url),
    ]
    if postgres_url:
        targets += [
            ReceiverTarget("postgres", "omnihook, PostgreSQL store", "stored", postgres_url),
            ReceiverTarget("postgres2", "omnihook, PostgreSQL, 2 processes", "stored", postgres_url, 2),
        ]  # fmt: skip
    return targets


def run_receiver(
    target: ReceiverTarget, payload: str, concurrency: int, duration: float
) -> dict[str, float]:
    """Load ``target`` with ``payload``; adds the server's peak RSS (MiB) to the load's result."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"bench.servers:{target.factory}", "--factory",
               "--port", str(port), "--loop", "uvloop", "--http", "httptools",
               "--no-access-log", "--log-level", "warning", "--workers", str(target.processes)]  # fmt: skip
    server = start_server(command, port, {"BENCH_STORE": target.store} if target.store else None)
    try:
        result = python_json("bench.load", f"http://127.0.0.1:{port}/rocketchat", "--payload", payload,
                             "--concurrency", str(concurrency), "--duration", str(duration),
                             "--token", TOKEN)  # fmt: skip
        result["peak_rss_mb"] = peak_rss_mb(server.pid)
    finally:
        stop(server)
    return result
