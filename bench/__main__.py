"""Run the benchmarks and print one table: ``uv run python -m bench [--quick]``.

Receiver throughput: each target runs alone in its own uvicorn process (httptools, uvloop, one
worker, no access log); the load generator runs in another process with the same payload, the
same concurrency and the same duration for every target. Ratios are against the bare Starlette
endpoint measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from .servers import TOKEN

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "OMNIHOOK_BENCH_POSTGRES_URL"


@dataclass
class Target:
    name: str
    factory: str
    store: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(target: Target, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if target.store:
        env["BENCH_STORE"] = target.store
    command = [sys.executable, "-m", "uvicorn", f"bench.servers:{target.factory}", "--factory",
               "--port", str(port), "--loop", "uvloop", "--http", "httptools",
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)  # any answer: it is up
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{target.name} did not start")


def _load(port: int, concurrency: int, duration: float) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.load", f"http://127.0.0.1:{port}/rocketchat",
               "--concurrency", str(concurrency), "--duration", str(duration), "--token", TOKEN]  # fmt: skip
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output)
    return result


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or os.environ.get("OMNIHOOK_TEST_POSTGRES_URL")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="Shorter runs (about a minute in all)."
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, help="Seconds of load per target.")
    args = parser.parse_args()
    duration = args.duration or (3.0 if args.quick else 10.0)

    workdir = Path(tempfile.mkdtemp(prefix="omnihook-bench-"))
    targets = [
        Target("bare Starlette (reads the body)", "bare"),
        Target("omnihook, no store (inline)", "inline"),
        Target("omnihook, SQLite store", "stored", f"sqlite:///{workdir / 'bench.db'}"),
    ]
    postgres = _postgres_url()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    if postgres:
        separator = "&" if "?" in postgres else "?"
        targets.append(
            Target("omnihook, PostgreSQL store", "stored", f"{postgres}{separator}schema={schema}")
        )

    rows = []
    for target in targets:
        port = _free_port()
        server = _serve(target, port)
        try:
            result = _load(port, args.concurrency, duration)
        finally:
            server.terminate()
            server.wait(timeout=30)
        rows.append((target, result))
        print(f"  {target.name}: {result['per_second']:.0f}/s", file=sys.stderr)

    if postgres:
        import psycopg

        with psycopg.connect(postgres, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    baseline = rows[0][1]["per_second"]
    inline = rows[1][1]["per_second"]
    print(f"\nReceiver, {args.concurrency} concurrent connections, {duration:g} s per target, "
          f"a {len(_sample_body())}-byte Message event")  # fmt: skip
    print(
        f"{'target':38} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'vs bare':>8} {'vs inline':>9}"
    )
    for target, result in rows:
        print(f"{target.name:38} {result['per_second']:9.0f} {result['p50_ms']:7.1f} {result['p99_ms']:7.1f} "
              f"{result['errors']:6.0f} {result['per_second'] / baseline:8.2f} {result['per_second'] / inline:9.2f}")  # fmt: skip
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")  # fmt: skip


def _sample_body() -> bytes:
    from .load import _bodies

    return _bodies(1)[0]


if __name__ == "__main__":
    main()
