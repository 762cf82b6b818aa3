"""Flask and any WSGI app: Rocket.Chat's webhook, inline (``omnihook-receiver[flask]``).

The receiver a WSGI app gets is the one ``create_app`` builds, without a store (handlers run
before the answer; sync handlers are fine: they run in a thread), behind an ASGI-to-WSGI bridge
(a2wsgi). So the token check, the limits, the parsing and every status code are omnihook's own::

    from flask import Flask
    from omnihook.receiver import Router
    from omnihook.receiver.wsgi import mount

    router = Router()

    @router.on("LivechatSession")
    def closed(event):                     # a plain function: Flask code stays sync
        save_transcript(event.id, event.messages)

    app = Flask(__name__)
    mount(app, "/rocketchat", router, tokens=["s3cret"])

For another WSGI framework, :func:`wsgi_app` is the WSGI callable to route to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from a2wsgi import ASGIMiddleware
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .app import create_app
from .router import Router

__all__ = ["mount", "wsgi_app"]


def wsgi_app(router: Router, tokens: Iterable[str] | None = None, **options: Any) -> Any:
    """A WSGI callable answering Rocket.Chat's webhook at ``POST /`` of wherever it is routed
    (``options`` go to :func:`~omnihook.receiver.create_app`; no store: inline)."""
    if options.get("store") is not None:
        raise ValueError("the WSGI adapter runs inline: give no store (use omnihook serve for one)")
    hook: Any = ASGIMiddleware(create_app(router, tokens, path="/", **options))  # type: ignore[arg-type]

    def at_its_root(environ: dict[str, Any], start_response: Any) -> Any:
        # Routed to by prefix (DispatcherMiddleware, a URL map), the path left is empty: "/".
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return hook(environ, start_response)

    return at_its_root


def mount(app: Any, path: str, router: Router, tokens: Iterable[str] | None = None,
          **options: Any) -> None:  # fmt: skip
    """Answer Rocket.Chat's webhook at ``path`` of the Flask (or any WSGI) ``app``; the rest of
    the app is untouched."""
    if not path.startswith("/") or path == "/":
        raise ValueError(f"path must start with '/' and name a path of its own, got {path!r}")
    hook = wsgi_app(router, tokens, **options)
    if hasattr(app, "wsgi_app"):  # Flask: keep the app object, wrap what it serves
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {path: hook})
    else:
        raise TypeError("mount() needs a Flask app (or an object with .wsgi_app); use wsgi_app()")
