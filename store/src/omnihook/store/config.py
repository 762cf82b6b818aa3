"""Store URLs: ``sqlite:///./omnihook.db`` (the embedded default) or ``postgresql://…``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["DEFAULT_STORE_URL", "STORE_ENV", "StoreConfig", "parse_store_url"]

DEFAULT_STORE_URL = "sqlite:///./omnihook.db"
STORE_ENV = "OMNIHOOK_STORE"

_SQLITE_SYNCHRONOUS = ("off", "normal", "full", "extra")


@dataclass(frozen=True)
class StoreConfig:
    """What a store URL says. Query parameters tune the backend:

    - SQLite: ``synchronous`` (``full`` by default: a commit survives power loss; ``normal`` survives
      a crash of the process only), ``busy_timeout`` in ms (5000).
    - PostgreSQL: ``schema`` (tables go there, created if missing), ``pool_size`` (10),
      ``connect_timeout`` in seconds (5); every other parameter goes to libpq as is.
    """

    kind: Literal["sqlite", "postgresql"]
    display: str
    """The URL without its password, safe to print."""
    path: Path | None = None
    synchronous: str = "full"
    busy_timeout_ms: int = 5000
    conninfo: str | None = None
    schema: str | None = None
    pool_size: int = 10
    connect_timeout: float = 5.0


def parse_store_url(url: str) -> StoreConfig:
    """Read a store URL; raises ``ValueError`` naming what is wrong with it."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.scheme == "sqlite":
        return _sqlite(url, parts.netloc, parts.path, params)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgresql(parts, params)
    raise ValueError(
        f"unsupported store URL {_redact(url)!r}: use sqlite:///path/to/file.db or "
        "postgresql://user@host:port/database"
    )


def _sqlite(url: str, netloc: str, path: str, params: dict[str, str]) -> StoreConfig:
    if netloc:
        raise ValueError(
            f"SQLite URLs have three slashes and no host: sqlite:///./omnihook.db, got {url!r}"
        )
    if not path or path == "/":
        raise ValueError(f"the SQLite URL {url!r} names no file")
    synchronous = params.pop("synchronous", "full").lower()
    if synchronous not in _SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"synchronous must be one of {', '.join(_SQLITE_SYNCHRONOUS)}, got {synchronous!r}"
        )
    busy_timeout = _int_param(params, "busy_timeout", 5000)
    if params:
        raise ValueError(f"unknown SQLite store parameter(s): {', '.join(sorted(params))}")
    # sqlite:///./x.db and sqlite:///x.db are relative; sqlite:////abs/x.db is absolute.
    file_path = Path(path[1:]) if path.startswith("/") else Path(path)
    return StoreConfig(
        kind="sqlite",
        display=url,
        path=file_path,
        synchronous=synchronous,
        busy_timeout_ms=busy_timeout,
    )


def _postgresql(parts: SplitResult, params: dict[str, str]) -> StoreConfig:
    schema = params.pop("schema", None) or None
    if schema is not None and not schema.replace("_", "").isalnum():
        raise ValueError(f"schema must be letters, digits and underscores, got {schema!r}")
    pool_size = _int_param(params, "pool_size", 10)
    connect_timeout = float(params.pop("connect_timeout", "5"))
    query = urlencode({**params, "connect_timeout": str(max(1, round(connect_timeout)))})
    conninfo = urlunsplit(parts._replace(scheme="postgresql", query=query))
    return StoreConfig(
        kind="postgresql",
        display=_redact(urlunsplit(parts._replace(query=""))),
        conninfo=conninfo,
        schema=schema,
        pool_size=pool_size,
        connect_timeout=connect_timeout,
    )


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.pop(name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
