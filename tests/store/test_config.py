"""Store URLs: what they say, and clear errors for what they get wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omnihook.store import parse_store_url


def test_sqlite_urls() -> None:
    relative = parse_store_url("sqlite:///./omnihook.db")
    assert (relative.kind, relative.path, relative.synchronous) == (
        "sqlite",
        Path("omnihook.db"),
        "full",
    )
    absolute = parse_store_url(
        "sqlite:////var/lib/omnihook/events.db?synchronous=normal&busy_timeout=250"
    )
    assert absolute.path == Path("/var/lib/omnihook/events.db")
    assert (absolute.synchronous, absolute.busy_timeout_ms) == ("normal", 250)


def test_postgresql_urls_keep_libpq_parameters_and_hide_passwords() -> None:
    config = parse_store_url(
        "postgres://app:hunter2@db:5432/omni?schema=hooks&pool_size=4&sslmode=require"
    )
    assert config.kind == "postgresql"
    assert (config.schema, config.pool_size) == ("hooks", 4)
    assert config.conninfo is not None
    assert "sslmode=require" in config.conninfo
    assert "schema=" not in config.conninfo
    assert config.display == "postgres://app:***@db:5432/omni"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/db", "unsupported store URL"),
        ("sqlite://host/file.db", "three slashes and no host"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous must be one of"),
        ("sqlite:///x.db?journal=wal", "unknown SQLite store parameter(s): journal"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout must be a whole number"),
        ("postgresql://h/db?schema=bad-name", "schema must be letters"),
        ("mysql://u:secret@h/db", "u:***@h"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_store_url(url)
    assert "secret" not in str(caught.value)
