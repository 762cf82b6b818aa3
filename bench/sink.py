"""A fast local webhook sink (its own process): answers every request ``200 {"ok":true}`` at
once, so the sender benchmarks measure the senders. HTTP/1.1 keep-alive, Content-Length bodies.

    python -m bench.sink --port 8123
"""

from __future__ import annotations

import argparse
import asyncio

_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio class

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = 0
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            length = _content_length(self.buffer[:head_end])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                break
            self.buffer = self.buffer[end:]
            answers += 1
        if answers and self.transport is not None:
            self.transport.write(_ANSWER * answers)


def _content_length(head: bytes) -> int:
    head = head.lower()
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    line_end = head.find(b"\r\n", at)
    return int(head[at + 15 : line_end if line_end >= 0 else len(head)])


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Sink, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(port))


if __name__ == "__main__":
    main()
