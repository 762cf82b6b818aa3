"""Real omnihook processes for end-to-end tests: start, wait until ready, kill -9, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from omnihook.contracts import samples

OMNIHOOK = str(Path(sys.executable).with_name("omnihook"))

# The handlers every process of a test runs: each execution appends one line to a file of its
# own process, so a test can count executions across processes (and across kill -9).
HOOKS = """
import asyncio, json, os, time
from omnihook.receiver import Router

router = Router()
EFFECTS = os.environ["EFFECTS_DIR"]
DELAY = float(os.environ.get("HANDLER_DELAY", "0"))

@router.on_any
async def record(event, context):
    if DELAY:
        await asyncio.sleep(DELAY)
    text = event.messages[0].msg if event.messages else ""
    line = json.dumps({"key": context.dedup_key, "room": event.room_id, "n": int(text.rsplit("-", 1)[1]),
                       "t": time.time_ns(), "stale": context.stale, "pid": os.getpid()})
    with open(os.path.join(EFFECTS, f"{os.getpid()}.jsonl"), "a") as handle:
        handle.write(line + "\\n")
"""


def write_hooks(directory: Path) -> Path:
    (directory / "effects").mkdir(exist_ok=True)
    (directory / "hooks.py").write_text(HOOKS)
    return directory / "effects"


def read_effects(effects: Path) -> list[dict[str, Any]]:
    found = []
    for path in effects.glob("*.jsonl"):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


def message(room: str, n: int) -> dict[str, Any]:
    """A visitor message of ``room`` whose text is ``room-n`` and whose time grows with ``n``."""
    document = samples.sample("visitor-message")
    document.pop("crmData", None)
    document["_id"] = room
    entry = document["messages"][0]
    entry["_id"] = f"{room}-m{n}"
    entry["msg"] = f"{room}-{n}"
    entry["rid"] = room
    stamp = f"2025-03-14T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    entry["ts"] = entry["_updatedAt"] = stamp
    return document


class OmnihookProcess:
    """``omnihook ARGS`` in ``cwd``; ready when ``/healthz`` answers (when given a port), or,
    for ``omnihook worker``, once it has logged its start (a worker still importing would miss
    a short test's events). ``executable``: another installation's ``omnihook``, which then runs
    with ``env`` alone (nothing inherited from this process)."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str],
        port: int | None = None,
        preexec_fn: Callable[[], None] | None = None,
        executable: str = OMNIHOOK,
    ) -> None:
        self.args = args
        self.preexec_fn = preexec_fn
        self.cwd = cwd
        self.executable = executable
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("OMNIHOOK_")}
        self.env = {**(inherited if executable == OMNIHOOK else {}), **env}
        self.port = port
        self.process: subprocess.Popen[str] | None = None
        self.log = cwd / f"{args[0]}-{port or 'x'}-{time.time_ns()}.log"

    def start(self) -> OmnihookProcess:
        handle = self.log.open("w")
        self.process = subprocess.Popen(
            [self.executable, *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=self.preexec_fn,
        )
        if self.port is not None or self.args[0] == "worker":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited early:\n{self.log.read_text()}")
            if self.port is None:
                if " on store " in self.log.read_text():
                    return
            else:
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code
                        == 200
                    ):
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"{self.args[0]} not ready in {timeout} s:\n{self.log.read_text()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup, no graceful anything
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text()


def query_one(store_url: str, tmp_path: Path, sql: str) -> tuple[Any, ...]:
    """One row from the test's store, SQLite file or PostgreSQL schema (``{t}`` = table prefix)."""
    if store_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(tmp_path / "omnihook.db", timeout=30) as connection:
            row = connection.execute(sql.format(t="")).fetchone()
    else:
        import psycopg

        base, _, schema = store_url.partition("?schema=")
        with psycopg.connect(base) as connection:
            row = connection.execute(sql.format(t=f'"{schema}".')).fetchone()
    assert row is not None
    return tuple(row)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
