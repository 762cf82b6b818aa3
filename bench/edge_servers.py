"""What runs inside the server processes of the HTTP edge comparison (``bench.edge``).

Every server runs the same app (``bench.servers.inline``: omnihook without a store) under limits
as close to ``LIMITS`` as it offers:

- ``GuardedProtocol``: omnihook's guarded httptools protocol with ``LIMITS``, named to uvicorn
  the way users name it (``--http bench.edge_servers:GuardedProtocol``);
- ``python -m bench.edge_servers hypercorn --port P``: Hypercorn (h11), configured in code.
"""

from __future__ import annotations

import argparse

from omnihook.receiver.http import GuardedHttpToolsProtocol, HttpLimits

__all__ = ["LIMITS", "GuardedProtocol"]

LIMITS = HttpLimits(header_timeout=2, body_timeout=4, body_gap_timeout=2)
"""Short deadlines, so that the hostile-client probes finish in seconds."""

GuardedProtocol = GuardedHttpToolsProtocol.with_limits(LIMITS)


def _hypercorn(port: int) -> None:
    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from .servers import inline

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.h11_max_incomplete_size = LIMITS.max_header_bytes
    config.read_timeout = int(LIMITS.header_timeout)  # between two reads, not for a whole head
    config.keep_alive_timeout = LIMITS.keep_alive_timeout
    config.backlog = LIMITS.backlog
    config.accesslog = None
    config.loglevel = "WARNING"
    uvloop.run(serve(inline(), config))  # type: ignore[arg-type]  # a Starlette app is ASGI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("server", choices=["hypercorn"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _hypercorn(args.port)


if __name__ == "__main__":
    main()
