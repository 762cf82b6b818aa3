"""End to end: simulated chats → ``omnihook serve`` (SQLite store, its worker, the SQL CRM).

The simulator (``omnihook simulate``) and the server each run in their own process. Once every
event is handled, the store itself says how long each took from its commit on arrival to the end
of its handling (the CRM write), and how many events per second went all the way through.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omnihook.store import Store
from omnihook.store.database import Tx

from .procs import ROOT, free_port, peak_rss_mb, start_server, stop

__all__ = ["run_end_to_end"]

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

    def percentile(q: float) -> float:
        return delays[min(done - 1, int(q * done))] * 1000

    return {
        "events": done,
        "dead": counts["dead"],
        "conversations": conversations,
        "per_second": done / (last_finished - started),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }
