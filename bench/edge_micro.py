"""The guarded protocol's own cost per request, in one process: ``uv run python -m bench.edge_micro``.

The server benchmark (``bench.edge``) measures whole processes under load, where the app's work
and the machine's noise hide a few microseconds. Here one connection (a transport that keeps
nothing) takes keep-alive requests one after another, each fed in one read as ``bench.load``
sends them, through uvicorn's plain httptools protocol and through the guarded one, taking turns;
the app is a bare ASGI app (the protocol's cost alone) or omnihook's inline receiver (the share
of the whole). Prints microseconds per request, best of the turns, and the ratio of rates.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from omnihook.receiver.http import GuardedHttpToolsProtocol

from .payloads import PAYLOADS
from .servers import TOKEN, inline

__all__ = ["main", "measure"]

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class _Transport(asyncio.Transport):
    """A socket that takes every write at once and reads whatever the test feeds."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


async def measure(
    protocol_class: type[HttpToolsProtocol], app: ASGIApp, requests: list[bytes]
) -> float:
    """Seconds for ``requests`` in turn on one keep-alive connection of ``protocol_class``."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[None] | None = None

    async def signalling(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if answered is not None and scope["type"] == "http":
            answered.set_result(None)

    config = Config(signalling, lifespan="off", access_log=False, log_level="warning",
                    proxy_headers=False)  # fmt: skip
    config.load()
    protocol = protocol_class(config, ServerState(), {}, loop)
    protocol.connection_made(_Transport())
    gc.collect()
    started = time.process_time()
    for request in requests:
        answered = loop.create_future()
        protocol.data_received(request)
        await answered
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed


def _requests(payload: str, count: int) -> list[bytes]:
    head = (b"POST /rocketchat HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
            b"X-RocketChat-Livechat-Token: %s\r\n" % TOKEN.encode())  # fmt: skip
    bodies = (PAYLOADS[payload].body(index) for index in range(count))
    return [head + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in bodies]


async def _compare(app: ASGIApp, requests: list[bytes], turns: int) -> tuple[float, float]:
    best = {HttpToolsProtocol: float("inf"), GuardedHttpToolsProtocol: float("inf")}
    await measure(GuardedHttpToolsProtocol, app, requests[:200])  # warm up both
    await measure(HttpToolsProtocol, app, requests[:200])
    for _ in range(turns):
        for protocol_class in best:
            best[protocol_class] = min(
                best[protocol_class], await measure(protocol_class, app, requests)
            )
    return best[HttpToolsProtocol] / len(requests), best[GuardedHttpToolsProtocol] / len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_micro", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--payload", choices=list(PAYLOADS), action="append")
    parser.add_argument("--app", choices=["bare", "inline"], action="append")
    args = parser.parse_args()
    apps: dict[str, ASGIApp] = {}
    if "bare" in (args.app or ["bare"]):
        apps["bare ASGI app"] = _bare
    if "inline" in (args.app or ["inline"]):
        apps["omnihook inline"] = inline()
    print(
        "| app, payload | httptools µs/request | guarded µs/request | guarded cost | rate ratio |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, app in apps.items():
        for payload in args.payload or PAYLOADS:
            requests = _requests(payload, args.requests)
            plain, guarded = uvloop.run(_compare(app, requests, args.turns))
            print(f"| {name}, {payload} | {plain * 1e6:.1f} | {guarded * 1e6:.1f} | "
                  f"{(guarded - plain) * 1e6:+.1f} µs | {plain / guarded:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
