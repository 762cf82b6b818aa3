"""What metrics and tracing cost a webhook request: µs per request, in process.

    uv run python -m bench.ops [--seconds 1.0]

The app from ``create_app`` is called as an ASGI app directly (no sockets, so the figure is the
app's own work), posting the Message event, inline (no store) and with a SQLite store. Three
variants run interleaved round by round, so that noise hits each alike, and each keeps its best
round: metrics turned into no-ops (the baseline), metrics as shipped, and metrics with
OpenTelemetry tracing on (an SDK tracer provider with no exporter: the spans' own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omnihook.receiver import TOKEN_HEADER, Router, create_app
from omnihook.receiver.ops import METRICS, TRACING
from omnihook.store import Store

from .payloads import encode, message_event

__all__ = ["measure_ops"]

VARIANTS = ("metrics off", "metrics on", "metrics and tracing")


def _scope(body: bytes) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (TOKEN_HEADER.lower().encode(), b"t")]  # fmt: skip
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/rocketchat", "raw_path": b"/rocketchat",
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}  # fmt: skip


class _Switch:
    """Puts the process in one variant's state."""

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        self.answered, self.event = METRICS.answered, METRICS.event
        self.commit = METRICS.commit_accept

    def set(self, variant: str) -> None:
        metrics = variant != "metrics off"
        METRICS.answered = self.answered if metrics else _nothing  # type: ignore[method-assign]
        METRICS.event = self.event if metrics else _nothing  # type: ignore[method-assign]
        METRICS.commit_accept = self.commit if metrics else _NO_HISTOGRAM
        if variant == "metrics and tracing":
            TRACING.refresh()
        else:
            TRACING.on = False


def _nothing(*args: Any, **kwargs: Any) -> None:
    pass


class _NoHistogram:
    observe = staticmethod(_nothing)


_NO_HISTOGRAM: Any = _NoHistogram()


async def _round(app: Any, body: bytes, calls: int) -> float:
    scope = _scope(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise AssertionError(f"answered {message['status']}")

    perf_counter = time.perf_counter
    start = perf_counter()
    for _ in range(calls):
        await app(dict(scope), receive, send)
    return (perf_counter() - start) / calls


async def _measure(app: Any, seconds: float, switch: _Switch) -> dict[str, float]:
    body = encode(message_event())
    calls = max(50, int(seconds / max(await _round(app, body, 50), 1e-6) / 10))
    best = dict.fromkeys(VARIANTS, float("inf"))
    deadline = time.monotonic() + seconds * len(VARIANTS)
    while time.monotonic() < deadline:
        for variant in VARIANTS:
            switch.set(variant)
            best[variant] = min(best[variant], await _round(app, body, calls))
    switch.set("metrics on")
    return {variant: value * 1e6 for variant, value in best.items()}


async def _run(seconds: float) -> list[dict[str, Any]]:
    switch = _Switch()
    results = []
    inline = create_app(Router(), tokens=["t"])
    results.append({"mode": "inline", **await _measure(inline, seconds, switch)})
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'ops.db'}?synchronous=off"
        async with Store.open(url) as store:
            stored = create_app(Router(), tokens=["t"], store=store, run_worker=False)
            results.append({"mode": "SQLite store", **await _measure(stored, seconds, switch)})
    return results


def measure_ops(seconds: float = 1.0) -> list[dict[str, Any]]:
    """µs per request of each variant (``mode``: inline, SQLite store)."""
    return asyncio.run(_run(seconds))


def main(argv: list[str] | None = None, run: Callable[[float], object] = measure_ops) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    print(json.dumps(run(parser.parse_args(argv).seconds)))


if __name__ == "__main__":
    main()
