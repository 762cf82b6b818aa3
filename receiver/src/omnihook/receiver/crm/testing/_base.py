"""What the CRM fakes share: a pytest-httpserver to answer on, ids, JSON answers."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

try:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response
except ImportError as exc:  # pragma: no cover - only without the testing extra
    raise ImportError(
        "omnihook.receiver.crm.testing needs pytest-httpserver: pip install 'omnihook-receiver[testing]'"
    ) from exc

__all__ = ["HTTPServer", "Handler", "_Fake", "_json", "_now"]

Handler = Callable[[Request], Response]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Fake:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _route(self, method: str, pattern: str, handler: Handler) -> None:
        self.server.expect_request(re.compile(pattern), method=method).respond_with_handler(handler)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The requests this server received, optionally of one method and/or path prefix."""
        return [r for r, _ in self.server.log
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))]  # fmt: skip
