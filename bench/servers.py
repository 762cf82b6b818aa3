"""The receivers under test, each an app factory for ``uvicorn --factory``.

Every one answers the same request (a ``Message`` event with the token header) on
``/rocketchat``; the store variants read their store URL from ``BENCH_STORE``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnihook.receiver import Router, create_app
from omnihook.store import favour_database_threads

TOKEN = "bench-token"


def bare() -> Starlette:
    """The ceiling: a Starlette endpoint that only reads the body."""

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    return Starlette(routes=[Route("/rocketchat", endpoint, methods=["POST"])])


def _router() -> Router:
    router = Router()

    @router.on_any
    async def noop(event: object) -> None:
        return None

    return router


def inline() -> Starlette:
    """omnihook without a store: token, parse, route, answer."""
    return create_app(_router(), tokens=[TOKEN])


def stored() -> Starlette:
    """omnihook with a store: token, parse, commit (group commits), answer. Handling is left to
    workers elsewhere, so the number is what one receiver process accepts. The process is tuned
    as ``omnihook serve`` tunes its own."""
    favour_database_threads()
    return create_app(_router(), tokens=[TOKEN], store=os.environ["BENCH_STORE"], run_worker=False)
