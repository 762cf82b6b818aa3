"""The receivers under test, each an app factory for ``uvicorn --factory``.

Every one answers the same request (a ``Message`` or Chat Close event with the token header) on
``/rocketchat``; the store variant reads its store URL from ``BENCH_STORE``. What users write
instead (hand-written FastAPI receivers, stateless or durable) is in ``bench.anchors``. Each
factory imports what it needs, so that a server starts without the others' imports.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from omnihook.receiver import Router

__all__ = ["TOKEN", "bare", "inline", "stored"]

TOKEN = "bench-token"


def bare() -> Starlette:
    """The ceiling: a Starlette endpoint that only reads the body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    return Starlette(routes=[Route("/rocketchat", endpoint, methods=["POST"])])


def _router() -> Router:
    from omnihook.receiver import Router

    router = Router()

    @router.on_any
    async def noop(event: object) -> None:
        return None

    return router


def inline() -> Starlette:
    """omnihook without a store: token, parse, route, answer, in a process tuned as
    ``omnihook serve`` tunes its own."""
    from omnihook.receiver import create_app
    from omnihook.receiver.tuning import tune_process

    tune_process()
    return create_app(_router(), tokens=[TOKEN])


def stored() -> Starlette:
    """omnihook with a store: token, parse, commit (group commits), answer. Handling is left to
    workers elsewhere, so the number is what one receiver process accepts. The process is tuned
    as ``omnihook serve`` tunes its own."""
    from omnihook.receiver import create_app
    from omnihook.receiver.tuning import tune_process

    tune_process()
    return create_app(_router(), tokens=[TOKEN], store=os.environ["BENCH_STORE"], run_worker=False)
