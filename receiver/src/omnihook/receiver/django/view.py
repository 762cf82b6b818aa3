"""The webhook view: the receiver ``create_app`` builds, answering Django's request."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from starlette.types import Message, Scope

from ..app import create_app
from ..cli import load_app_target
from ..router import Router

__all__ = ["OmnihookSettings", "omnihook_settings", "rocketchat_view"]


@dataclass(frozen=True)
class OmnihookSettings:
    """``settings.OMNIHOOK``, read: the router, the tokens, the store URL (or none)."""

    router: Router
    tokens: list[str]
    store: str | None


def omnihook_settings() -> OmnihookSettings:
    """``settings.OMNIHOOK`` as omnihook uses it; a clear error for what is missing."""
    config: dict[str, Any] = dict(getattr(settings, "OMNIHOOK", {}) or {})
    spec = config.get("ROUTER")
    if not spec:
        raise ImproperlyConfigured(
            "settings.OMNIHOOK['ROUTER'] names your Router, e.g. 'myapp.hooks:router'"
        )
    router = load_app_target(str(spec))
    if not isinstance(router, Router):
        raise ImproperlyConfigured(f"settings.OMNIHOOK['ROUTER'] ({spec}) is not a Router")
    tokens = list(config.get("TOKENS") or [])
    if not tokens and config.get("TOKEN_ENV"):
        tokens = [
            t.strip() for t in os.environ.get(str(config["TOKEN_ENV"]), "").split(",") if t.strip()
        ]
    if not tokens:
        raise ImproperlyConfigured(
            "settings.OMNIHOOK needs TOKENS (or TOKEN_ENV): Rocket.Chat's Secret Token"
        )
    return OmnihookSettings(router, tokens, config.get("STORE"))


def rocketchat_view(
    router: Router | None = None,
    tokens: Iterable[str] | None = None,
    *,
    store: str | None = None,
    **options: Any,
) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """An async view receiving Rocket.Chat's webhook; ``router``, ``tokens`` and ``store`` default
    to ``settings.OMNIHOOK`` (read at the first request); ``options`` go to ``create_app``."""
    built: list[Any] = []

    def receiver() -> Any:
        if not built:
            if router is not None and tokens is not None:
                chosen = OmnihookSettings(router, list(tokens), store)
            else:
                chosen = omnihook_settings()
            built.append(create_app(chosen.router, chosen.tokens, path="/", store=chosen.store,
                                    run_worker=False, **options))  # fmt: skip
        return built[0]

    @csrf_exempt
    async def rocketchat(request: HttpRequest) -> HttpResponse:
        app = receiver()
        try:
            body = request.body
        except RequestDataTooBig:
            return HttpResponse(b'{"error":"body_too_large","detail":"over Django\'s '
                                b'DATA_UPLOAD_MAX_MEMORY_SIZE"}', status=413,
                                content_type="application/json")  # fmt: skip
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await app(_scope(request), receive, send)
        response = HttpResponse(answer["body"], status=answer["status"])
        for key, value in answer["headers"]:
            if key.lower() not in (b"content-length",):
                response[key.decode("latin-1")] = value.decode("latin-1")
        return response

    return rocketchat


def _scope(request: HttpRequest) -> Scope:
    headers = [(key.lower().encode("latin-1"), value.encode("latin-1"))
               for key, value in request.headers.items()]  # fmt: skip
    protocol = str(request.META.get("SERVER_PROTOCOL", "HTTP/1.1"))
    client = request.META.get("REMOTE_ADDR") or "127.0.0.1"
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": protocol.split("/")[-1],
            "method": request.method or "POST", "scheme": request.scheme, "path": "/",
            "raw_path": b"/", "root_path": "", "query_string": b"", "headers": headers,
            "client": (client, 0), "server": ("django", 0)}  # fmt: skip
