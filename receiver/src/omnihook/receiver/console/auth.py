"""The console's own credentials, sessions, CSRF tokens and login throttle.

The console has one password (``OMNIHOOK_CONSOLE_PASSWORD``, or a file), never the webhook's
token. Signing in asks for a name too, recorded with every action (replay, retry, purge). A
session is a random id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS), kept in this
process's memory for ``ttl`` seconds; every form carries a CSRF token derived from it. Failed
logins from one address are slowed down: after ``free`` failures, each attempt must wait twice
as long as the one before (1 s, 2 s, 4 s... up to 5 minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omnihook.store import register_secret

__all__ = ["PASSWORD_ENV", "ConsoleAuth", "LoginThrottle", "Session", "read_password"]

PASSWORD_ENV = "OMNIHOOK_CONSOLE_PASSWORD"
COOKIE = "omnihook_console"
_MIN_PASSWORD = 12


def read_password(path: Path | None = None, env: str = PASSWORD_ENV) -> str:
    """The console password, from ``path`` (its first line) or the environment variable
    ``env``; a clear error when there is none or it is too short to be one."""
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(
                f"cannot read the console password from {path}: {exc.strerror}"
            ) from None
        password = lines[0].strip() if lines else ""
        where = str(path)
    else:
        password = os.environ.get(env, "")
        where = f"${env}"
    if not password:
        raise ValueError(f"the console needs a password: set {where} (at least {_MIN_PASSWORD} "
                         "characters; never the webhook's token)")  # fmt: skip
    if len(password) < _MIN_PASSWORD:
        raise ValueError(
            f"the console password in {where} is shorter than {_MIN_PASSWORD} characters"
        )
    register_secret(password)
    return password


@dataclass(frozen=True)
class Session:
    id: str
    name: str
    """Who signed in (recorded with each action)."""
    expires_at: float

    @property
    def csrf(self) -> str:
        return hashlib.sha256(f"csrf:{self.id}".encode()).hexdigest()[:32]


@dataclass
class LoginThrottle:
    """Failed logins per client address; after ``free`` of them, a growing wait."""

    free: int = 5
    longest: float = 300.0
    forget_after: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before trying again (0: it may try now)."""
        count, last = self._failures.get(client, (0, 0.0))
        now = self.clock()
        if now - last > self.forget_after:
            self._failures.pop(client, None)
            return 0.0
        if count < self.free:
            return 0.0
        return max(0.0, last + min(2.0 ** (count - self.free), self.longest) - now)

    def failed(self, client: str) -> None:
        count, last = self._failures.get(client, (0, 0.0))
        if self.clock() - last > self.forget_after:
            count = 0
        self._failures[client] = (count + 1, self.clock())
        if len(self._failures) > 10_000:  # many addresses: forget the oldest half
            for key, _ in sorted(self._failures.items(), key=lambda kv: kv[1][1])[:5_000]:
                del self._failures[key]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class ConsoleAuth:
    """Checks the password, keeps sessions and the throttle."""

    def __init__(
        self,
        password: str,
        *,
        ttl: float = 8 * 3600,
        clock: Callable[[], float] = time.time,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._password = password.encode()
        self.ttl = ttl
        self.clock = clock
        self.throttle = throttle or LoginThrottle()
        self._sessions: dict[str, Session] = {}

    def uses(self, secrets: list[str]) -> bool:
        """Whether the console's password is one of ``secrets`` (the webhook's tokens)."""
        return any(hmac.compare_digest(s.encode(), self._password) for s in secrets)

    def login(self, name: str, password: str) -> Session | None:
        """A new session when ``password`` is the console's, else ``None``."""
        if not hmac.compare_digest(password.encode(), self._password):
            return None
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
        session = Session(secrets.token_urlsafe(32), name.strip()[:80] or "?", now + self.ttl)
        self._sessions[session.id] = session
        return session

    def session(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, if any."""
        if not cookie:
            return None
        session = self._sessions.get(cookie)
        if session is None or session.expires_at <= self.clock():
            self._sessions.pop(cookie or "", None)
            return None
        return session

    def logout(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, session.csrf)
