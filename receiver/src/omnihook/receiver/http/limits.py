"""The limits a receiver puts on every HTTP connection, in one value."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpLimits"]

_SECONDS = (
    "header_timeout",
    "body_timeout",
    "body_gap_timeout",
    "keep_alive_timeout",
    "send_timeout",
)


@dataclass(frozen=True)
class HttpLimits:
    """How much, and how slowly, a client may send before the server gives up on it.

    >>> from omnihook.receiver.http import HttpLimits
    >>> HttpLimits(header_timeout=5).max_header_bytes
    65536

    The defaults leave room for any Rocket.Chat: its webhook calls time out after 5 s
    (``Livechat_http_timeout``), so a delivery slower than these is dead on its side already.
    """

    max_header_bytes: int = 64 * 1024
    """The request line and every header together, in bytes; more gets 431. It also bounds the
    framing between two pieces of a chunked body (chunk-size lines, trailers)."""
    header_timeout: float = 10.0
    """Seconds from a request's first byte (or the connection's start) to the end of its headers."""
    body_timeout: float = 30.0
    """Seconds from the end of the headers to the last byte of the body."""
    body_gap_timeout: float = 10.0
    """Longest silence, in seconds, between two pieces of a body."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open between requests. The guarded protocol
    keeps to this value, wherever it runs: uvicorn's own ``timeout_keep_alive``
    (``--timeout-keep-alive``) does not apply to it."""
    backlog: int = 4096
    """Connections the kernel queues before the server accepts them (capped by the system's
    ``net.core.somaxconn``)."""
    send_timeout: float = 10.0
    """Longest a client may leave the server's answers unread once the buffers between them are
    full (or after the server closed), in seconds; then the connection is cut."""

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in _SECONDS:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds")

    def describe(self) -> str:
        """One line for a log: ``headers ≤ 65,536 bytes within 10 s, body within 30 s ...``."""
        return (
            f"headers ≤ {self.max_header_bytes:,} bytes within {self.header_timeout:g} s, "
            f"body within {self.body_timeout:g} s (gaps ≤ {self.body_gap_timeout:g} s), "
            f"idle keep-alive {self.keep_alive_timeout:g} s, "
            f"answers left unread {self.send_timeout:g} s, backlog {self.backlog:,}"
        )
