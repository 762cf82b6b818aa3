"""Run every benchmark and print one table: ``uv run python -m bench [--quick]``.

Each server under test and each client runs in its own process: receivers in uvicorn (httptools,
uvloop, no access log) loaded by ``bench.load``; senders against ``bench.sink``. The HTTP edge part
runs one app in each candidate server, then meets it with hostile clients (``bench.edge``). Every
ratio compares two numbers measured in this same run. PostgreSQL rows appear when
``OMNIHOOK_BENCH_POSTGRES_URL`` (or ``OMNIHOOK_TEST_POSTGRES_URL``) is set.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .e2e import run_end_to_end
from .edge import PROBE_SECONDS, edge_targets, run_edge
from .edge_servers import LIMITS
from .parsing import measure_parsing
from .payloads import PAYLOADS
from .procs import free_port, python_json, start_server, stop
from .receiver import receiver_targets, run_receiver

POSTGRES_ENV = "OMNIHOOK_BENCH_POSTGRES_URL"


@dataclass(frozen=True)
class Plan:
    receiver_seconds: float
    deliveries: int
    slow_deliveries: int  # for the raw httpx loop, about 30 times slower
    backlog: int
    chats: int
    parse_seconds: float
    console_events: int


FULL = Plan(receiver_seconds=8, deliveries=40_000, slow_deliveries=3_000, backlog=100_000,
            chats=600, parse_seconds=1.0, console_events=1_000_000)  # fmt: skip
QUICK = Plan(receiver_seconds=2, deliveries=10_000, slow_deliveries=1_000, backlog=20_000,
             chats=150, parse_seconds=0.3, console_events=100_000)  # fmt: skip


class Table:
    """Markdown rows, printed as they come and again, whole, at the end."""

    def __init__(self) -> None:
        self.lines = [
            "| benchmark | result | p50 / p99 | peak RSS | ratio |",
            "|---|---:|---:|---:|---|",
        ]
        self.targets: list[str] = []

    def section(self, title: str) -> None:
        self.lines.append(f"| **{title}** | | | | |")
        print(f"\n{title}", file=sys.stderr)

    def row(
        self, name: str, result: str, latency: str = "", rss: str = "", ratio: str = ""
    ) -> None:
        self.lines.append(f"| {name} | {result} | {latency} | {rss} | {ratio} |")
        print(f"  {name}: {result} {latency} {rss} {ratio}", file=sys.stderr)

    def target(self, text: str, value: float, goal: float, at_most: bool = False) -> None:
        met = value <= goal if at_most else value >= goal
        self.targets.append(
            f"- {'met' if met else 'MISSED'}: {text}: {value:.2f} (target {'≤' if at_most else '≥'} {goal:g})"
        )


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or os.environ.get("OMNIHOOK_TEST_POSTGRES_URL")


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _drop_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def receivers(
    table: Table, plan: Plan, workdir: Path, postgres: str | None, schemas: list[str]
) -> None:
    for key, payload in PAYLOADS.items():
        table.section(
            f"Receiver: {payload.name} ({payload.size:,} bytes), 64 connections, {plan.receiver_seconds:g} s, events/s"
        )
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        schemas.append(schema)
        targets = receiver_targets(f"sqlite:///{workdir / f'receiver-{key}.db'}",
                                   _with_schema(postgres, schema) if postgres else None)  # fmt: skip
        rates: dict[str, float] = {}
        for target in targets:
            result = run_receiver(target, key, 64, plan.receiver_seconds)
            rates[target.key] = result["per_second"]
            errors = f", {result['errors']:.0f} errors" if result["errors"] else ""
            ratio = f"{result['per_second'] / rates['bare']:.2f} × bare"
            if "fastapi" in rates and target.key != "bare":
                ratio += f", {result['per_second'] / rates['fastapi']:.2f} × FastAPI"
            table.row(target.name, f"{result['per_second']:,.0f}{errors}",
                      f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms", f"{result['peak_rss_mb']:.0f} MiB", ratio)  # fmt: skip
        table.target(f"inline ≥ 0.5 × bare Starlette ({key})", rates["inline"] / rates["bare"], 0.5)
        table.target(f"inline ≥ 2 × FastAPI ({key})", rates["inline"] / rates["fastapi"], 2)
        table.target(
            f"SQLite ≥ 0.35 × bare Starlette ({key})", rates["sqlite"] / rates["bare"], 0.35
        )


def parsing(table: Table, plan: Plan) -> None:
    table.section("Parsing: µs per payload, one process")
    results = measure_parsing(plan.parse_seconds)
    for result in results:
        table.row(f"{result['payload']} ({result['bytes']:,} bytes)",
                  f"json.loads {result['json_loads_us']:.1f} µs, parse_event {result['parse_event_us']:.1f} µs",
                  ratio=f"{result['ratio']:.2f} × json.loads")  # fmt: skip
    large_ratio = results[-1]["ratio"]
    assert isinstance(large_ratio, float)
    table.target("parse_event ≤ 1.5 × json.loads (large payload)", large_ratio, 1.5, at_most=True)


def senders(
    table: Table, plan: Plan, workdir: Path, postgres: str | None, schemas: list[str]
) -> None:
    table.section(
        f"Sender: deliveries/s of a {PAYLOADS['message'].size}-byte Message event to a local sink"
    )
    port = free_port()
    sink = start_server([sys.executable, "-m", "bench.sink", "--port", str(port)], port, health="/")
    url = f"http://127.0.0.1:{port}/rocketchat"
    runs = [("aiohttp", "raw aiohttp loop, 64 at once", 64, plan.deliveries, None),
            ("httpx", "raw httpx loop, 64 at once", 64, plan.slow_deliveries, None),
            ("send", "Sender.send, 1 at a time", 1, plan.deliveries // 4, None),
            ("send", "Sender.send, 64 at once", 64, plan.deliveries, None),
            ("outbox", "outbox on SQLite, 64 at once", 64, plan.deliveries, f"sqlite:///{workdir / 'outbox.db'}")]  # fmt: skip
    if postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        schemas.append(schema)
        runs.append(
            (
                "outbox",
                "outbox on PostgreSQL, 64 at once",
                64,
                plan.deliveries,
                _with_schema(postgres, schema),
            )
        )
    rates: dict[str, float] = {}
    try:
        for mode, name, concurrency, count, store in runs:
            args = [mode, url, "--count", str(count), "--concurrency", str(concurrency)]
            result = python_json("bench.sending", *args, *(["--store", store] if store else []))
            rates[name] = result["per_second"]
            ratio = ""
            if mode != "aiohttp":
                ratio = (
                    f"{result['per_second'] / rates['raw aiohttp loop, 64 at once']:.2f} × aiohttp"
                )
            if mode not in ("aiohttp", "httpx"):
                ratio += (
                    f", {result['per_second'] / rates['raw httpx loop, 64 at once']:.1f} × httpx"
                )
            table.row(
                name,
                f"{result['per_second']:,.0f}",
                rss=f"{result['peak_rss_mb']:.0f} MiB",
                ratio=ratio,
            )
    finally:
        stop(sink)
    aiohttp_rate, httpx_rate = (
        rates["raw aiohttp loop, 64 at once"],
        rates["raw httpx loop, 64 at once"],
    )
    for name, rate in rates.items():
        if name.startswith("outbox"):
            store = name.split(" on ")[1].split(",")[0]
            table.target(f"outbox ({store}) ≥ 0.5 × raw aiohttp", rate / aiohttp_rate, 0.5)
            table.target(f"outbox ({store}) ≥ 5 × raw httpx", rate / httpx_rate, 5)


def memory(table: Table, plan: Plan) -> None:
    table.section("Sender memory: a backlog in the SQLite outbox, receiver not answering")
    small = python_json("bench.backlog", "--pending", "1000")
    large = python_json("bench.backlog", "--pending", str(plan.backlog))
    for result in (small, large):
        table.row(f"{result['pending']:,.0f} pending deliveries", f"{result['rss_mb']:.1f} MiB now",
                  rss=f"{result['peak_rss_mb']:.1f} MiB",
                  ratio=f"{result['peak_rss_mb'] / small['peak_rss_mb']:.2f} × 1,000 pending")  # fmt: skip
    table.target(f"sender memory flat from 1,000 to {plan.backlog:,} pending (peak RSS ratio)",
                 large["peak_rss_mb"] / small["peak_rss_mb"], 1.2, at_most=True)  # fmt: skip


def operations(table: Table, plan: Plan) -> None:
    table.section("Operations: µs per webhook request inside the app (Message event, no sockets)")
    results: Any = python_json("bench.ops", "--seconds", str(plan.parse_seconds))  # a list
    for result in results:
        base = result["metrics off"]
        for variant in ("metrics off", "metrics on", "metrics and tracing"):
            table.row(f"{result['mode']}, {variant}", f"{result[variant]:.1f} µs",
                      ratio=f"{result[variant] / base:.2f} × metrics off")  # fmt: skip
        table.target(f"metrics ≤ 1.15 × none ({result['mode']})",
                     result["metrics on"] / base, 1.15, at_most=True)  # fmt: skip


def console_queries(table: Table, plan: Plan) -> None:
    table.section(f"Console: ms per query over a SQLite store of {plan.console_events:,} events")
    result: Any = python_json("bench.console", "--events", str(plan.console_events))
    base = result["ms"]["first page, no filter"]
    for name, ms in result["ms"].items():
        table.row(name, f"{ms:.2f} ms", ratio=f"{ms / base:.1f} × first page")
    worst = max(
        ms for name, ms in result["ms"].items() if not name.startswith(("text", "events per"))
    )
    table.target("console: slowest indexed list query, ms", worst, 10, at_most=True)


def end_to_end(table: Table, plan: Plan) -> None:
    table.section(f"End to end: {plan.chats} simulated chats → omnihook serve (SQLite) → SQL CRM")
    result = run_end_to_end(plan.chats)
    table.row(f"{result['events']:,.0f} events, {result['conversations']:,.0f} conversations in the CRM",
              f"{result['per_second']:,.0f} events/s",
              f"{result['p50_ms']:,.0f} / {result['p99_ms']:,.0f} ms event to CRM",
              f"{result['peak_rss_mb']:.0f} MiB")  # fmt: skip


def http_edge(table: Table, plan: Plan) -> None:
    """Each candidate server runs the same app (omnihook inline), the servers taking turns under
    the same load, then each meets the hostile clients (``bench.edge``)."""
    targets = {target.key: target for target in edge_targets()}
    results = run_edge(list(targets.values()), list(PAYLOADS), 64, plan.receiver_seconds)
    for key, payload in PAYLOADS.items():
        table.section(f"HTTP edge: the same omnihook app (inline) in each server, {payload.name}, "
                      f"64 connections, {plan.receiver_seconds:g} s, events/s")  # fmt: skip
        base = results["httptools"][0][key]["per_second"]
        for target_key, (loads, _) in results.items():
            result, target = loads[key], targets[target_key]
            errors = f", {result['errors']:.0f} errors" if result["errors"] else ""
            table.row(target.name, f"{result['per_second']:,.0f}{errors}",
                      f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms", f"{result['peak_rss_mb']:.0f} MiB",
                      f"{result['per_second'] / base:.2f} × httptools")  # fmt: skip
        guarded = results["guarded"][0][key]["per_second"]
        table.target(f"guarded httptools ≥ 0.9 × plain httptools ({key})", guarded / base, 0.9)
    table.section(f"HTTP edge: hostile clients (limits {LIMITS.max_header_bytes // 1024} KiB of head, "
                  f"head {LIMITS.header_timeout:g} s, body {LIMITS.body_timeout:g} s, gaps {LIMITS.body_gap_timeout:g} s "
                  f"where the server has them; each slow client watched {PROBE_SECONDS:g} s)")  # fmt: skip
    for target_key, (_, hostile) in results.items():
        target = targets[target_key]
        slow = "; ".join(
            f"{name}: {hostile[name]}"
            for name in ("silent", "trickled head", "short body", "trickled body")
        )
        table.row(target.name, f"64 MiB header: {hostile['flood']}, /healthz ≤ {hostile['healthz_max_ms']:,.0f} ms",
                  slow, f"{hostile['peak_rss_mb']:.0f} MiB")  # fmt: skip
    if "guarded" in results:
        slowest = results["guarded"][1]["healthz_max_ms"]
        assert isinstance(slowest, float)
        table.target(
            "guarded: slowest /healthz during a 64 MiB header, ms", slowest, 100, at_most=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="A shorter run (about a minute).")
    parser.add_argument("--only", choices=["receiver", "edge", "parsing", "ops", "console", "sender", "memory", "e2e"], action="append",
                        help="Run only these parts (repeatable).")  # fmt: skip
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    parts = args.only or [
        "receiver",
        "edge",
        "parsing",
        "ops",
        "console",
        "sender",
        "memory",
        "e2e",
    ]
    postgres = _postgres_url()
    started = time.monotonic()
    table = Table()
    schemas: list[str] = []
    with tempfile.TemporaryDirectory(prefix="omnihook-bench-") as directory:
        workdir = Path(directory)
        try:
            if "receiver" in parts:
                receivers(table, plan, workdir, postgres, schemas)
            if "edge" in parts:
                http_edge(table, plan)
            if "parsing" in parts:
                parsing(table, plan)
            if "ops" in parts:
                operations(table, plan)
            if "console" in parts:
                console_queries(table, plan)
            if "sender" in parts:
                senders(table, plan, workdir, postgres, schemas)
            if "memory" in parts:
                memory(table, plan)
            if "e2e" in parts:
                end_to_end(table, plan)
        finally:
            if postgres and schemas:
                _drop_schemas(postgres, schemas)
    print("\n".join(table.lines))
    print("\nTargets (ratios measured in this run):\n" + "\n".join(table.targets))
    print(f"\n{datetime.now(UTC):%Y-%m-%d}, `uv run python -m bench{' --quick' if args.quick else ''}`, "
          f"{time.monotonic() - started:.0f} s; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {platform.platform()}"
          + (", PostgreSQL on the same machine" if postgres else ", no PostgreSQL"))  # fmt: skip


if __name__ == "__main__":
    main()
