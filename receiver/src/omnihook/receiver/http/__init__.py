"""The HTTP edge of a receiver: limits on request heads, deadlines on slow clients.

uvicorn's httptools parser puts no limit on a header's size and uvicorn waits forever for a
request that never completes. This package runs uvicorn with a guarded protocol instead::

    from omnihook.receiver import Router, create_app
    from omnihook.receiver.http import HttpLimits, run_server

    app = create_app(Router(), tokens=["s3cret"])
    run_server(app, "0.0.0.0", 8000, HttpLimits(max_header_bytes=32 * 1024, header_timeout=5))

- :class:`HttpLimits`: the limits, one frozen value with its defaults (64 KiB of request line
  and headers, or of chunk framing; headers within 10 s; a body within 30 s, never silent for
  10 s; idle keep-alive connections closed after 5 s; answers left unread cut after 10 s).
- :class:`GuardedHttpToolsProtocol`: uvicorn's httptools protocol under those limits: 431 for a
  head too large, 408 for a client too slow, 400 for a request it cannot parse, JSON bodies,
  each after the answers to the requests pipelined before it; at most 1 MiB more of a body
  answered before it ended. With your own uvicorn (websockets off: an upgraded connection
  leaves the limits; the idle keep-alive time is the limits', not ``--timeout-keep-alive``)::

      uvicorn myhooks:app --http omnihook.receiver.http:GuardedHttpToolsProtocol --ws none

- :func:`run_server` and :func:`server_config`: uvicorn with the protocol and the limits, and
  websockets off.
- :func:`raise_open_file_limit`: every connection, slow or not, holds a file descriptor.
"""

from .files import raise_open_file_limit
from .limits import HttpLimits
from .protocol import GuardedHttpToolsProtocol
from .server import run_server, server_config

__all__ = [
    "GuardedHttpToolsProtocol",
    "HttpLimits",
    "raise_open_file_limit",
    "run_server",
    "server_config",
]
