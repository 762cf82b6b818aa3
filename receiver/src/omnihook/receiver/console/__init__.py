"""The web console: chats, events, failures and replay, on the bridge's store.

``omnihook serve --console`` mounts it at ``/console``; ``omnihook console`` runs it alone.

>>> from omnihook.receiver.console import ConsoleAuth, create_console, read_password
>>> app = create_console(store, ConsoleAuth(read_password()))     # doctest: +SKIP
"""

from __future__ import annotations

from .app import create_console
from .auth import PASSWORD_ENV, ConsoleAuth, LoginThrottle, Session, read_password

__all__ = [
    "PASSWORD_ENV",
    "ConsoleAuth",
    "LoginThrottle",
    "Session",
    "create_console",
    "read_password",
]
