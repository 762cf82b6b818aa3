"""Run every benchmark and print one table: ``uv run python -m bench [--quick | --smoke]``.

Each server under test and each client runs in its own process: receivers in uvicorn (httptools,
uvloop, no access log) loaded by ``bench.load``; senders against ``bench.sink``. The HTTP edge part
runs one app in each candidate server, then meets it with hostile clients (``bench.edge``). Every
ratio compares two numbers measured in this same run. The anchors are what users build instead of
omnihook (``bench.anchors``), run when their services are named: PostgreSQL rows appear when
``OMNIHOOK_BENCH_POSTGRES_URL`` (or ``OMNIHOOK_TEST_POSTGRES_URL``) is set, Celery on Redis with
``OMNIHOOK_BENCH_REDIS_URL`` (say ``redis://127.0.0.1:6379/0``), Celery on RabbitMQ with
``OMNIHOOK_BENCH_AMQP_URL`` (say ``amqp://guest:guest@127.0.0.1:5672//``); each run uses a queue
of its own and removes it.

``--smoke`` runs every part for about a second, so that the benchmark cannot rot (CI runs it):
its figures mean nothing, and it fails only when a part raises. Any run exits non-zero when a part
raised (the other parts still run); a missed target never fails a run.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .e2e import ChatPool, run_end_to_end, run_steady, search_steady
from .edge import PROBES, Probes, edge_targets, run_edge
from .edge_servers import LIMITS
from .parsing import measure_parsing
from .payloads import PAYLOADS
from .procs import free_port, python_json, start_server, stop
from .receiver import DURABLE_ANCHORS, receiver_targets, run_receivers, with_schema
from .steady import ROOM_GAP

POSTGRES_ENV = "OMNIHOOK_BENCH_POSTGRES_URL"
REDIS_ENV = "OMNIHOOK_BENCH_REDIS_URL"
AMQP_ENV = "OMNIHOOK_BENCH_AMQP_URL"


@dataclass(frozen=True)
class Plan:
    receiver_seconds: float
    load_warmup: float  # before each measured load
    deliveries: int
    slow_deliveries: int  # for the raw httpx loop, about 30 times slower
    backlog: int
    backlog_hold: float
    chats: int  # the end-to-end overload
    steady_rate: float  # events/s of the steady end-to-end run
    steady_seconds: float
    search_from: float  # the search for the highest steady rate: first rate, step length, steps
    search_seconds: float
    search_steps: int
    split_rate: float  # the scale-out run: serve --no-worker beside omnihook worker
    split_seconds: float
    parse_seconds: float
    console_events: int
    edge_rounds: int
    probes: Probes


FULL = Plan(receiver_seconds=8, load_warmup=1.0, deliveries=40_000, slow_deliveries=3_000,
            backlog=100_000, backlog_hold=3.0, chats=600, steady_rate=500, steady_seconds=60,
            search_from=500, search_seconds=10, search_steps=7, split_rate=100, split_seconds=20,
            parse_seconds=1.0,
            console_events=1_000_000, edge_rounds=4, probes=PROBES)  # fmt: skip
QUICK = Plan(receiver_seconds=2, load_warmup=1.0, deliveries=10_000, slow_deliveries=1_000,
             backlog=20_000, backlog_hold=3.0, chats=150, steady_rate=500, steady_seconds=10,
             search_from=500, search_seconds=4, search_steps=4, split_rate=100, split_seconds=5,
             parse_seconds=0.3,
             console_events=100_000, edge_rounds=4, probes=PROBES)  # fmt: skip
SMOKE = Plan(receiver_seconds=0.3, load_warmup=0.1, deliveries=400, slow_deliveries=100,
             backlog=2_000, backlog_hold=0.5, chats=10, steady_rate=100, steady_seconds=2,
             search_from=200, search_seconds=1, search_steps=1, split_rate=50, split_seconds=1,
             parse_seconds=0.05,
             console_events=2_000, edge_rounds=1, probes=Probes(seconds=1.0, flood_bytes=1 << 20))  # fmt: skip
"""Every part for about a second, so that the benchmark cannot rot: its figures mean nothing."""


class Table:
    """Markdown rows, printed as they come and again, whole, at the end."""

    HEADER = ("| benchmark | result | p50 / p99 | peak RSS | ratio |", "|---|---:|---:|---:|---|")

    def __init__(self) -> None:
        self.lines: list[str] = []
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


def _drop_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def receivers(
    table: Table,
    plan: Plan,
    workdir: Path,
    postgres: str | None,
    brokers: dict[str, str | None],
    schemas: list[str],
) -> None:
    def new_schema() -> str:
        schemas.append(f"bench_{uuid.uuid4().hex[:8]}")
        return schemas[-1]

    targets = receiver_targets(workdir, postgres, new_schema, brokers["redis"], brokers["amqp"])
    print(f"\nReceivers: {len(targets)} servers, each loaded with {' then '.join(PAYLOADS)}",
          file=sys.stderr)  # fmt: skip
    results = run_receivers(targets, list(PAYLOADS), 64, plan.receiver_seconds, plan.load_warmup)
    for key, payload in PAYLOADS.items():
        table.section(
            f"Receiver: {payload.name} ({payload.size:,} bytes), 64 connections, {plan.receiver_seconds:g} s, events/s"
        )
        rates = {target: result[key]["per_second"] for target, result in results.items()}
        for target in targets:
            result = results[target.key][key]
            errors = f", {result['errors']:.0f} errors" if result["errors"] else ""
            ratio = f"{result['per_second'] / rates['bare']:.2f} × bare"
            if target.key != "bare":
                ratio += f", {result['per_second'] / rates['fastapi']:.2f} × FastAPI"
            table.row(target.name, f"{result['per_second']:,.0f}{errors}",
                      f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms", f"{result['peak_rss_mb']:.0f} MiB", ratio)  # fmt: skip
        stored = rates["sqlite"]
        bare_goal = 0.5 if key == "message" else 0.25
        table.target(f"omnihook SQLite ≥ {bare_goal:g} × bare Starlette ({key})",
                     stored / rates["bare"], bare_goal)  # fmt: skip
        table.target(f"omnihook SQLite ≥ 1.5 × stateless hand-written FastAPI ({key})",
                     stored / rates["fastapi"], 1.5)  # fmt: skip
        for anchor, name in DURABLE_ANCHORS.items():
            if anchor in rates:
                table.target(f"omnihook SQLite ≥ 3 × {name} ({key})", stored / rates[anchor], 3)
        if "postgres" in rates:
            table.target(f"omnihook PostgreSQL ≥ 0.8 × omnihook SQLite ({key})",
                         rates["postgres"] / stored, 0.8)  # fmt: skip
            table.target(f"omnihook PostgreSQL, 2 processes ≥ 1.6 × 1 process ({key})",
                         rates["postgres2"] / rates["postgres"], 1.6)  # fmt: skip


def parsing(table: Table, plan: Plan) -> None:
    table.section("Parsing: µs per payload, one process")
    results = measure_parsing(plan.parse_seconds)
    for result in results:
        table.row(f"{result['payload']} ({result['bytes']:,} bytes)",
                  f"json.loads {result['json_loads_us']:.1f} µs, parse_event {result['parse_event_us']:.1f} µs",
                  ratio=f"{result['ratio']:.2f} × json.loads")  # fmt: skip
    for result in results:
        ratio = result["ratio"]
        assert isinstance(ratio, float)
        table.target(
            f"parse_event ≤ 1.5 × json.loads ({result['payload']})", ratio, 1.5, at_most=True
        )


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
                with_schema(postgres, schema),
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
            goal = 0.5 if store == "SQLite" else 0.35
            table.target(f"outbox ({store}) ≥ {goal:g} × raw aiohttp", rate / aiohttp_rate, goal)
            table.target(f"outbox ({store}) ≥ 5 × raw httpx", rate / httpx_rate, 5)


def memory(table: Table, plan: Plan) -> None:
    table.section("Sender memory: a backlog in the SQLite outbox, receiver not answering")
    hold = ("--hold", str(plan.backlog_hold))
    small = python_json("bench.backlog", "--pending", "1000", *hold)
    large = python_json("bench.backlog", "--pending", str(plan.backlog), *hold)
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


def end_to_end(
    table: Table, plan: Plan, workdir: Path, postgres: str | None, schemas: list[str]
) -> None:
    table.section(
        f"End to end, overload: {plan.chats} simulated chats as fast as answered → omnihook serve (SQLite) → SQL CRM"
    )
    result = run_end_to_end(plan.chats)
    table.row(f"{result['events']:,.0f} events, {result['conversations']:,.0f} conversations in the CRM",
              f"{result['per_second']:,.0f} events/s",
              f"{result['p50_ms']:,.0f} / {result['p99_ms']:,.0f} ms event to CRM",
              f"{result['peak_rss_mb']:.0f} MiB")  # fmt: skip
    table.section(f"End to end, steady: simulated chats posted at a set rate (open loop, each room in order, "
                  f"{ROOM_GAP:g} s between its events) → omnihook serve (SQLite) → SQL CRM; delay from post to CRM write")  # fmt: skip
    pool = ChatPool(workdir / "chats.tsv")
    steady = run_steady(pool, plan.steady_rate, plan.steady_seconds, drain=60)
    table.row(
        f"{plan.steady_rate:,.0f} events/s for {plan.steady_seconds:g} s", *_steady_cells(steady)
    )
    table.target(f"end to end at {plan.steady_rate:,.0f} events/s: p99 post → CRM, ms",
                 steady["p99_ms"], 50, at_most=True)  # fmt: skip

    def step(rate: float, result: dict[str, float], ok: bool) -> None:
        cells = _steady_cells(result)
        table.row(f"search: {rate:,.0f} events/s for {plan.search_seconds:g} s",
                  *cells[:3], f"{'met' if ok else 'missed'}; {cells[3]}")  # fmt: skip

    good, missed = search_steady(pool, plan.search_from, plan.search_seconds, plan.search_steps,
                                 limit_ms=250, on_step=step)  # fmt: skip
    table.row("highest steady rate with p99 < 250 ms",
              f"{good:,.0f} events/s" if good else f"below {plan.search_from:,.0f} events/s",
              ratio=f"{missed:,.0f} events/s missed" if missed else "no rate tried missed")  # fmt: skip

    table.section(f"End to end, scaled out: omnihook serve --no-worker beside an omnihook worker process, against "
                  f"one serve with its worker, on each store, {plan.split_rate:,.0f} events/s for {plan.split_seconds:g} s; "
                  "a worker hears of events stored by another process from the store's watch (SQLite's commit "
                  "counter, PostgreSQL's NOTIFY)")  # fmt: skip
    for name in ["SQLite", *(["PostgreSQL"] if postgres else [])]:
        for separate in (False, True):
            store_url = None  # a fresh SQLite file
            if name == "PostgreSQL" and postgres:  # each run a fresh schema: the chats repeat
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                schemas.append(schema)
                store_url = with_schema(postgres, schema)
            result = run_steady(pool, plan.split_rate, plan.split_seconds, drain=60,
                                separate_worker=separate, store_url=store_url)  # fmt: skip
            where = "in its own process" if separate else "in the server's process"
            table.row(f"{name}, worker {where}", *_steady_cells(result))


def _steady_cells(result: dict[str, float]) -> tuple[str, str, str, str]:
    """Result, latency, RSS and notes of a steady run."""

    def ms(value: float) -> str:
        return f"{value:,.0f} ms" if math.isfinite(value) else "unhandled"

    errors = f", {result['errors']:,.0f} errors" if result["errors"] else ""
    unhandled = f", {result['unhandled']:,.0f} unhandled" if result["unhandled"] else ""
    if result["duplicates"]:  # answered as the same event as an earlier one: nothing to handle
        unhandled += f", {result['duplicates']:,.0f} duplicates"
    return (f"{result['handled']:,.0f} events ({result['per_second']:,.0f}/s sent){errors}{unhandled}, "
            f"{result['conversations']:,.0f} conversations",
            f"{ms(result['p50_ms'])} / {ms(result['p99_ms'])} post to CRM",
            f"{result['peak_rss_mb']:.0f} MiB",
            f"load behind schedule p99 {result['lag_p99_ms']:.1f} ms, answers p99 {result['answer_p99_ms']:.1f} ms")  # fmt: skip


def http_edge(table: Table, plan: Plan) -> None:
    """Each candidate server runs the same app (omnihook inline), the servers taking turns under
    the same load, then each meets the hostile clients (``bench.edge``)."""
    targets = {target.key: target for target in edge_targets()}
    results = run_edge(list(targets.values()), list(PAYLOADS), 64, plan.receiver_seconds,
                       rounds=plan.edge_rounds, warmup=min(0.5, plan.load_warmup), probes=plan.probes)  # fmt: skip
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
                  f"where the server has them; each slow client watched {plan.probes.seconds:g} s)")  # fmt: skip
    for target_key, (_, hostile) in results.items():
        target = targets[target_key]
        slow = "; ".join(
            f"{name}: {hostile[name]}"
            for name in ("silent", "trickled head", "short body", "trickled body")
        )
        table.row(target.name, f"{plan.probes.flood_bytes >> 20} MiB header: {hostile['flood']}, /healthz ≤ {hostile['healthz_max_ms']:,.0f} ms",
                  slow, f"{hostile['peak_rss_mb']:.0f} MiB")  # fmt: skip
    if "guarded" in results:
        slowest = results["guarded"][1]["healthz_max_ms"]
        assert isinstance(slowest, float)
        table.target(
            f"guarded: slowest /healthz during a {plan.probes.flood_bytes >> 20} MiB header, ms",
            slowest,
            100,
            at_most=True,
        )


_SMOKE_ORDER = ["receiver", "edge", "e2e", "sender", "memory", "ops", "console", "parsing"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="A shorter run (a few minutes).")
    size.add_argument("--smoke", action="store_true",
                      help="Every part for about a second, to check that the benchmark runs.")  # fmt: skip
    parser.add_argument("--only", choices=["receiver", "edge", "parsing", "ops", "console", "sender", "memory", "e2e"], action="append",
                        help="Run only these parts (repeatable).")  # fmt: skip
    args = parser.parse_args()
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    parts = list(dict.fromkeys(args.only or [])) or [
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
    brokers = {"redis": os.environ.get(REDIS_ENV) or None, "amqp": os.environ.get(AMQP_ENV) or None}
    started = time.monotonic()
    schemas: list[str] = []
    tables = {part: Table() for part in parts}
    with tempfile.TemporaryDirectory(prefix="omnihook-bench-") as directory:
        workdir = Path(directory)
        runs: dict[str, Callable[[Table], None]] = {
            "receiver": lambda table: receivers(table, plan, workdir, postgres, brokers, schemas),
            "edge": lambda table: http_edge(table, plan),
            "parsing": lambda table: parsing(table, plan),
            "ops": lambda table: operations(table, plan),
            "console": lambda table: console_queries(table, plan),
            "sender": lambda table: senders(table, plan, workdir, postgres, schemas),
            "memory": lambda table: memory(table, plan),
            "e2e": lambda table: end_to_end(table, plan, workdir, postgres, schemas),
        }

        def attempt(part: str) -> bool:
            """Run ``part``; whether it finished (what it raised goes to stderr and the table)."""
            began = time.monotonic()
            try:
                runs[part](tables[part])
                return True
            except Exception as exc:
                traceback.print_exc()
                tables[part].row(f"**{part}: failed**", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])  # fmt: skip
                return False
            finally:
                print(f"({part}: {time.monotonic() - began:.0f} s)", file=sys.stderr)

        try:
            if args.smoke:
                # Two parts at a time, the longest first: a smoke run checks that every part runs,
                # not what it measures, and most of its time is spent starting processes.
                order = sorted(parts, key=_SMOKE_ORDER.index)
                with ThreadPoolExecutor(2) as pool:
                    finished = dict(zip(order, pool.map(attempt, order), strict=True))
            else:
                finished = {part: attempt(part) for part in parts}
        finally:
            if postgres and schemas:
                _drop_schemas(postgres, schemas)
    failed = [part for part in parts if not finished[part]]
    command = " ".join(["uv run python -m bench", *(["--quick"] if args.quick else []),
                        *(["--smoke"] if args.smoke else []), *(f"--only {part}" for part in args.only or [])])  # fmt: skip
    services = [
        "PostgreSQL on the same machine" if postgres else "no PostgreSQL",
        "Redis on the same machine" if brokers["redis"] else f"no Redis ({REDIS_ENV} unset)",
        "RabbitMQ on the same machine" if brokers["amqp"] else f"no RabbitMQ ({AMQP_ENV} unset)",
    ]
    ordered = [tables[part] for part in runs if part in parts]
    print("\n".join([*Table.HEADER, *(line for table in ordered for line in table.lines)]))
    print("\nTargets (ratios measured in this run" + ("; a smoke run's figures mean nothing" if args.smoke else "")
          + "):\n" + "\n".join(target for table in ordered for target in table.targets))  # fmt: skip
    print(f"\n{datetime.now(UTC):%Y-%m-%d}, `{command}`, {time.monotonic() - started:.0f} s; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}, {', '.join(services)}")  # fmt: skip
    if failed:
        print(f"\nFailed: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
