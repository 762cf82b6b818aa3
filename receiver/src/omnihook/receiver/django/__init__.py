"""Django: Rocket.Chat's webhook as an async view (``omnihook-receiver[django]``).

Add ``"omnihook.receiver.django"`` to ``INSTALLED_APPS`` (for the ``manage.py`` commands), say
where the router and tokens are in ``settings.py``, and route the view::

    # settings.py
    OMNIHOOK = {
        "ROUTER": "myapp.hooks:router",          # a omnihook Router
        "TOKENS": ["s3cret"],                     # or TOKEN_ENV: the variable holding them
        "STORE": "sqlite:///./omnihook.db",       # optional: durable, handled by a worker
    }

    # urls.py
    from omnihook.receiver.django import rocketchat_view
    urlpatterns = [path("rocketchat", rocketchat_view())]

The view checks the token itself (no CSRF check on it) and answers as ``omnihook serve`` does.
Without a store the handlers run before the answer; with one, each delivery is committed and
``python manage.py omnihook_worker`` handles it (``omnihook_events`` lists what was received).
The store needs an ASGI server (uvicorn, daphne): its connections live on one event loop.
"""

from __future__ import annotations

from .view import omnihook_settings, rocketchat_view

__all__ = ["omnihook_settings", "rocketchat_view"]
