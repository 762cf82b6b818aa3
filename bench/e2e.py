"""End to end: simulated chats → ``omnihook serve`` (SQLite store, its worker, the SQL CRM).

Two ways to load it, the load and the server each in their own process:

- overload (:func:`run_end_to_end`): the simulator (``omnihook simulate``) plays chats as fast as
  the server answers; once every event is handled, the store says how long each took from its
  commit on arrival to the end of its handling (the CRM write), and how many events per second
  went all the way through;
- steady (:func:`run_steady`, :func:`search_steady`): ``bench.steady`` posts simulated chats'
  events at a set rate (open loop, each room in order), recording when it posted each; the delay
  of an event is from that moment to the end of its handling (``events.finished_at``, stamped
  once its handlers, the SQL CRM's write among them, returned), both read from the same clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omnihook.store import Store
from omnihook.store.database import Tx

from .payloads import encode
from .procs import ROOT, free_port, launch, peak_rss_mb, python_json, start_server, stop
from .stats import percentile_ms
from .steady import chats_needed

__all__ = ["ChatPool", "run_end_to_end", "run_steady", "search_steady", "steady_ok"]

_TOKEN = "bench-e2e-token"
_OMNIHOOK = str(Path(sys.executable).with_name("omnihook"))  # the console script beside python


def run_end_to_end(chats: int, concurrency: int = 32) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        store_url = f"sqlite:///{Path(directory) / 'e2e.db'}"
        port = free_port()
        env = {"OMNIHOOK_TOKEN": _TOKEN}
        server = start_server([_OMNIHOOK, "serve", "--port", str(port),
                               "--store", store_url, "--log-level", "warning"], port, env)  # fmt: skip
        try:
            started = time.time()
            subprocess.run([_OMNIHOOK, "simulate",
                            f"http://127.0.0.1:{port}/rocketchat", "--chats", str(chats),
                            "--concurrency", str(concurrency), "--seed", "7"],
                           cwd=ROOT, env={**os.environ, **env}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            result = asyncio.run(_wait_until_handled(store_url, started))
            result["peak_rss_mb"] = peak_rss_mb(server.pid)
        finally:
            stop(server)
    return result


async def _wait_until_handled(store_url: str, started: float) -> dict[str, float]:
    async with Store.open(store_url) as store:
        deadline = time.monotonic() + 300
        while True:
            counts = await store.events.counts()
            if not counts["pending"] and not counts["processing"] and not counts["failed"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"events still unhandled after 300 s: {counts}")
            await asyncio.sleep(0.2)

        def read(tx: Tx) -> tuple[list[float], float, int]:
            delays = tx.execute(
                "SELECT finished_at - received_at FROM events WHERE status = 'done' ORDER BY 1"
            ).fetchall()
            (last,) = tx.execute("SELECT MAX(finished_at) FROM events").fetchall()[0]
            (conversations,) = tx.execute("SELECT COUNT(*) FROM crm_conversations").fetchall()[0]
            return [float(row[0]) for row in delays], float(last), int(conversations)

        delays, last_finished, conversations = await store.database.run(read)
    done = len(delays)
    return {
        "events": done,
        "dead": counts["dead"],
        "conversations": conversations,
        "per_second": done / (last_finished - started),
        "p50_ms": percentile_ms(delays, 0.50),
        "p99_ms": percentile_ms(delays, 0.99),
    }


@dataclass
class ChatPool:
    """Simulated chats' events in a file, one a line (chat number, SHA-256 of the body, body),
    generated as runs need more; ``bench.steady`` reads it from the start."""

    path: Path
    seed: int = 7
    chats: int = 0
    events: int = 0

    def ensure(self, chats: int) -> None:
        """Make the pool hold at least ``chats`` chats."""
        if self.chats >= chats:
            return
        from omnihook.sender.simulate import Simulation

        simulation = Simulation(seed=self.seed)
        with self.path.open("ab") as pool:
            for number in range(self.chats, chats):
                for payload in simulation.chat(number).payloads():
                    body = encode(payload)
                    key = hashlib.sha256(body).hexdigest().encode()
                    pool.write(b"%d\t%s\t%s\n" % (number, key, body))
                    self.events += 1
        self.chats = chats


def run_steady(
    pool: ChatPool,
    rate: float,
    seconds: float,
    warmup: float = 1.0,
    drain: float = 10.0,
    separate_worker: bool = False,
    store_url: str | None = None,
) -> dict[str, float]:
    """``omnihook serve`` on a fresh SQLite store, loaded at ``rate`` events/s for ``seconds``
    (after ``warmup`` seconds not measured); then up to ``drain`` seconds for the backlog to be
    handled. Delays (ms, post to end of handling) of events still unhandled by then count as
    infinite. ``separate_worker``: ``serve --no-worker`` and an ``omnihook worker`` process;
    ``store_url``: another store than a fresh SQLite file (a PostgreSQL schema of its own)."""
    pool.ensure(chats_needed(rate, warmup + seconds))
    with tempfile.TemporaryDirectory() as directory:
        store_url = store_url or f"sqlite:///{Path(directory) / 'steady.db'}"
        record = Path(directory) / "sent.tsv"
        port = free_port()
        # The worker starts first: it imports while the server does, and is ready as soon.
        worker = None
        if separate_worker:
            worker = launch([_OMNIHOOK, "worker", "--store", store_url, "--log-level", "warning"])
        try:
            server = start_server([_OMNIHOOK, "serve", "--port", str(port), "--store", store_url,
                                   "--log-level", "warning", *(["--no-worker"] if separate_worker else [])],
                                  port, {"OMNIHOOK_TOKEN": _TOKEN})  # fmt: skip
            try:
                result = python_json("bench.steady", f"http://127.0.0.1:{port}/rocketchat",
                                     "--pool", str(pool.path), "--rate", str(rate), "--seconds", str(seconds),
                                     "--warmup", str(warmup), "--token", _TOKEN, "--record", str(record))  # fmt: skip
                if result["short"]:
                    raise RuntimeError(f"the chat pool ran out for {result['short']:.0f} lanes")
                finished, conversations = asyncio.run(_finished(store_url, drain))
                result["peak_rss_mb"] = peak_rss_mb(server.pid)
            finally:
                stop(server)
        finally:
            if worker is not None:
                stop(worker)
        delays: list[float] = []
        duplicates = 0
        for line in record.read_text().splitlines():
            key, posted, status = line.split("\t")
            if key not in finished:
                duplicates += status == "200"  # answered as the same event as an earlier one
                continue
            done = finished[key]
            delays.append(done - float(posted) if done is not None else math.inf)
    delays.sort()
    result |= {
        "handled": sum(1 for delay in delays if delay != math.inf),
        "unhandled": sum(1 for delay in delays if delay == math.inf),
        "duplicates": duplicates,
        "conversations": conversations,
        "p50_ms": percentile_ms(delays, 0.50),
        "p99_ms": percentile_ms(delays, 0.99),
        "max_ms": (delays[-1] if delays else 0.0) * 1000,
    }
    return result


def steady_ok(result: dict[str, float], limit_ms: float) -> bool:
    """Every event accepted, p99 under ``limit_ms``, and the load on schedule (else the rate
    asked for was not the rate sent)."""
    return not result["errors"] and result["p99_ms"] < limit_ms and result["lag_p99_ms"] < limit_ms


def search_steady(
    pool: ChatPool,
    start: float,
    seconds: float,
    steps: int,
    limit_ms: float = 250.0,
    warmup: float = 1.0,
    on_step: Callable[[float, dict[str, float], bool], None] | None = None,
) -> tuple[float, float | None]:
    """The highest steady rate (events/s) whose p99 stays under ``limit_ms``: from ``start``,
    doubling until a rate misses, then bisecting, each step a ``seconds`` run, at most ``steps``
    of them. Returns the highest rate met (0 if none) and the lowest missed (``None`` if none)."""
    good, bad = 0.0, None
    rate = start
    for _ in range(steps):
        result = run_steady(pool, rate, seconds, warmup, drain=max(5.0, seconds))
        ok = steady_ok(result, limit_ms)
        if on_step is not None:
            on_step(rate, result, ok)
        if ok:
            good = rate
        else:
            bad = rate
        if bad is None:
            rate *= 2
            continue
        middle = round((good + bad) / 2 / 50) * 50
        if bad - good <= max(100.0, 0.1 * bad) or middle in (good, bad):
            break
        rate = middle
    return good, bad


async def _finished(store_url: str, drain: float) -> tuple[dict[str, float | None], int]:
    """Once the backlog is handled (or after ``drain`` seconds): each stored event's end of
    handling (``None`` if not handled), and the CRM's conversations."""
    async with Store.open(store_url) as store:
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            counts = await store.events.counts()
            if not counts["pending"] and not counts["processing"]:
                break
            await asyncio.sleep(0.1)

        def read(tx: Tx) -> tuple[dict[str, float | None], int]:
            rows = tx.execute("SELECT dedup_key, status, finished_at FROM events").fetchall()
            (conversations,) = tx.execute("SELECT COUNT(*) FROM crm_conversations").fetchall()[0]
            finished = {
                str(key): float(at) if status == "done" and at is not None else None
                for key, status, at in rows
            }
            return finished, int(conversations)

        return await store.database.run(read)
