"""Real store faults for tests: a read-only SQLite file, a full disk, a lock held by another
process, a PostgreSQL role without the privileges it needs. Each skips, saying why, where the
machine cannot make it (they need root for ``chattr`` and ``mount``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import psycopg
import pytest

from .store_urls import postgres_url


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Callable[[], None]]:
    """``path`` cannot be written, even by root (``chattr +i``), until the block ends or the
    function it gives is called."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: cannot make a file read-only for root")
    made = _run("chattr", "+i", str(path))
    if made.returncode != 0:
        pytest.skip(f"chattr +i failed here ({made.stderr.strip()}): needs root on ext4/xfs")

    def release() -> None:
        _run("chattr", "-i", str(path))

    try:
        yield release
    finally:
        release()


@contextlib.contextmanager
def tiny_disk(path: Path, size_kib: int = 1024) -> Iterator[Path]:
    """A real file system of ``size_kib`` KiB mounted at ``path`` (tmpfs)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}): needs root")
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory``; returns the filler file (delete it to free room)."""
    filler = directory / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@contextlib.contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    """Another connection (as another process would) holds ``path``'s write lock."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.rollback()
        blocker.close()


class LeastPrivilegeRole:
    """A PostgreSQL role that owns nothing: the owner migrates a schema, the role gets only
    what ``grant`` gives it. Dropped, with the schema, at the end."""

    def __init__(self) -> None:
        self.admin_url = postgres_url()
        suffix = uuid.uuid4().hex[:10]
        self.role = f"omnihook_lp_{suffix}"
        self.schema = f"lp_{suffix}"
        self.database = psycopg.conninfo.conninfo_to_dict(self.admin_url).get("dbname", "test")

    def admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """The store URL as the role, on the schema."""
        parts = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        host, port = parts.get("host", "127.0.0.1"), parts.get("port", 5432)
        return f"postgresql://{self.role}@{host}:{port}/{self.database}?schema={self.schema}"

    @property
    def owner_url(self) -> str:
        separator = "&" if "?" in self.admin_url else "?"
        return f"{self.admin_url}{separator}schema={self.schema}"

    def grant_usage(self) -> None:
        """What a least-privilege receiver needs on a migrated schema, and nothing more."""
        self.admin(f'GRANT USAGE ON SCHEMA "{self.schema}" TO {self.role}')
        self.admin(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{self.schema}" '
            f"TO {self.role}"
        )
        self.admin(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{self.schema}" TO {self.role}')

    def __enter__(self) -> Self:
        self.admin(f"CREATE ROLE {self.role} LOGIN")
        return self

    def __exit__(self, *exc: object) -> None:
        self.admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.admin(f"DROP OWNED BY {self.role}")
        self.admin(f"DROP ROLE IF EXISTS {self.role}")


def is_root() -> bool:
    return os.geteuid() == 0
