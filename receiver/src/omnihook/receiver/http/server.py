"""Running an ASGI app in uvicorn behind :class:`GuardedHttpToolsProtocol`."""

from __future__ import annotations

import logging
from typing import Any, cast

import uvicorn

from .files import raise_open_file_limit
from .limits import HttpLimits
from .protocol import GuardedHttpToolsProtocol

__all__ = ["run_server", "server_config"]

logger = logging.getLogger("omnihook.receiver.http")


def _options(limits: HttpLimits, extra: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "http": GuardedHttpToolsProtocol.with_limits(limits),
        # The guarded protocol keeps to limits.keep_alive_timeout itself; uvicorn's setting
        # follows it for any other protocol named in uvicorn_options. uvicorn types it as int;
        # it only hands it to loop.call_later, which takes any number.
        "timeout_keep_alive": cast(int, limits.keep_alive_timeout),
        "backlog": limits.backlog,
        # An upgraded connection leaves the guarded protocol (and its limits): a webhook
        # receiver has no websocket to offer.
        "ws": "none",
        "log_config": None,
    }
    options.update(extra)
    return options


def server_config(
    app: Any, host: str, port: int, limits: HttpLimits | None = None, **uvicorn_options: Any
) -> uvicorn.Config:
    """A ``uvicorn.Config`` for ``app`` under ``limits``, for running ``uvicorn.Server`` yourself
    (in a test, next to other tasks)::

        server = uvicorn.Server(server_config(app, "127.0.0.1", 8000, HttpLimits(header_timeout=2)))
        await server.serve()

    ``uvicorn_options`` go to ``uvicorn.Config`` as they are (``log_level``, ``lifespan``...);
    websockets are off unless they say otherwise (``ws="auto"``).
    """
    options = _options(limits or HttpLimits(), uvicorn_options)
    return uvicorn.Config(app, host=host, port=port, **options)


def run_server(
    app: Any, host: str, port: int, limits: HttpLimits | None = None, **uvicorn_options: Any
) -> None:
    """Serve ``app`` until stopped (Ctrl-C, SIGTERM), as ``omnihook serve`` and ``omnihook
    inspect`` do: uvicorn with :class:`GuardedHttpToolsProtocol` under ``limits``, the
    open-file limit raised first (:func:`raise_open_file_limit`).

    >>> from omnihook.receiver import Router, create_app
    >>> from omnihook.receiver.http import HttpLimits, run_server
    >>> app = create_app(Router(), tokens=["s3cret"])
    >>> run_server(app, "127.0.0.1", 8000, HttpLimits(max_header_bytes=32 * 1024))  # doctest: +SKIP

    ``uvicorn_options`` go to ``uvicorn.run`` as they are (``log_level``, ``access_log``...);
    websockets are off unless they say otherwise (``ws="auto"``: an upgraded connection is no
    longer under ``limits``).
    """
    limits = limits or HttpLimits()
    raise_open_file_limit()
    logger.info("HTTP limits: %s", limits.describe())
    uvicorn.run(app, host=host, port=port, **_options(limits, uvicorn_options))
