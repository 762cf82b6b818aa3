"""FastAPI: Rocket.Chat's webhook as a dependency, or a whole router (``omnihook-receiver[fastapi]``).

A dependency checks the token, reads the body within the limit and parses it; your endpoint
gets the typed event::

    from fastapi import Depends, FastAPI
    from omnihook.contracts import LivechatSession
    from omnihook.receiver.fastapi import install, rocketchat_event

    app = FastAPI()
    install(app)  # refusals answered with omnihook's status codes and bodies

    Delivery = Annotated[AnyEvent, Depends(rocketchat_event(tokens=["s3cret"]))]

    @app.post("/rocketchat")
    async def hook(event: Delivery) -> dict:
        return {"seen": event.type, "room": event.room_id}

Or a router from a :class:`~omnihook.receiver.Router`, inline or with a store (its worker runs
with the app)::

    app.include_router(rocketchat_router(router, tokens=["s3cret"], store="sqlite:///./omnihook.db"))

Either way the webhook and its payload types appear in FastAPI's OpenAPI and ``/docs``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import Response

from omnihook.contracts import TOKEN_HEADER, AnyEvent
from omnihook.store import Store

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, _WebhookEndpoint, create_app
from .openapi import webhook_operation
from .router import Router
from .verification import TokenVerifier

__all__ = ["WebhookRefused", "install", "rocketchat_event", "rocketchat_router"]


class WebhookRefused(HTTPException):
    """A delivery refused before your endpoint runs; ``response`` is omnihook's answer (the
    status code and JSON body of the table in omnihook's docs). :func:`install` sends it as it
    is; without it, FastAPI answers ``{"detail": {...that body...}}`` with the same status."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code, detail=json.loads(bytes(response.body)))
        self.response = response


def install(app: FastAPI) -> None:
    """Answer :class:`WebhookRefused` with omnihook's own bodies."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebhookRefused)
        return exc.response

    app.add_exception_handler(WebhookRefused, refused)


def rocketchat_event(
    tokens: Iterable[str] | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    insecure_no_token: bool = False,
) -> Callable[[Request], Awaitable[AnyEvent]]:
    """A dependency giving the delivery's event, parsed; a refused delivery raises
    :class:`WebhookRefused` (401 token, 411/400/413 length, 400/422 body) before the endpoint."""
    token_list = list(tokens or [])
    if not token_list and not insecure_no_token:
        raise ValueError("rocketchat_event needs at least one token (or insecure_no_token=True)")
    verifier = TokenVerifier(token_list) if token_list else TokenVerifier.insecure()
    endpoint = _WebhookEndpoint(Router(), verifier, max_body_bytes, None, None)

    async def rocketchat_delivery(request: Request) -> AnyEvent:
        read = await endpoint.read(request)
        if isinstance(read, Response):
            raise WebhookRefused(read)
        request.state.rocketchat_body = read[1]  # the exact bytes, for a store of your own
        return read[0]

    return rocketchat_delivery


def rocketchat_router(
    router: Router,
    tokens: Iterable[str] | None = None,
    *,
    path: str = DEFAULT_PATH,
    store: Store | str | None = None,
    **options: Any,
) -> APIRouter:
    """``POST path`` answered as ``omnihook serve`` answers it (the same app as
    :func:`~omnihook.receiver.create_app`, which gets ``options``), as a FastAPI router: include
    it in your app; with a store, its worker runs for the app's life."""
    inner = create_app(router, tokens, path=path, store=store, **options)
    api = APIRouter(lifespan=inner.router.lifespan_context)

    async def rocketchat_webhook(request: Request) -> Response:
        response: Response = await inner.state.endpoint.handle(request)
        return response

    api.add_api_route(
        path, rocketchat_webhook, methods=["POST"], summary="Rocket.Chat Omnichannel webhook",
        description=f"Rocket.Chat posts each event here with the {TOKEN_HEADER} header.",
        openapi_extra=webhook_operation(), response_class=Response, include_in_schema=True,
    )  # fmt: skip
    return api
