"""Learning at once that another process stored work, instead of at the next poll.

A worker in a process of its own (``omnihook serve --no-worker`` beside ``omnihook worker``)
hears of new events only when it polls; at half a second a poll, that was most of an event's
delay. A :class:`StoreWatch` calls back in the event loop soon after another connection commits:

- **PostgreSQL**: the accepting transaction sends ``NOTIFY`` on a channel of the store (see
  :func:`channel`), delivered at its commit; the watch ``LISTEN``\\s on a connection of its own.
- **SQLite**: there is no message between processes, but ``PRAGMA data_version`` changes when
  another connection commits; the watch reads it every ``interval`` seconds (20 ms), which costs
  a few microseconds and takes no lock.

Polling stays as it was underneath: a watch that cannot connect (the database is down) retries
quietly and the loop it wakes keeps polling, so nothing waits for the watch.

    async with StoreWatch(store.database, channel(store.config, "events"), worker.wake):
        await worker.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from .config import StoreConfig
from .database import Database

__all__ = ["StoreWatch", "channel"]

logger = logging.getLogger("omnihook.store")

_STOP_CHECK = 0.1
"""Seconds a listening connection waits for a notification before it looks whether to stop."""

_JOIN_TIMEOUT = 2.0
"""Seconds :meth:`StoreWatch.stop` waits for its thread."""

_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}  # fmt: skip
"""A listening connection only reads: without TCP keepalives, a server that vanished (a
failover, a dropped route) would leave it waiting forever instead of reconnecting."""

_MAX_CHANNEL = 63
"""PostgreSQL's identifiers (and so channel names) keep 63 bytes."""


def channel(config: StoreConfig, topic: str) -> str:
    """The notification channel of ``topic`` in this store: one per schema, since NOTIFY reaches
    every session of the database whatever its search path. It is made from the URL, so give
    servers and workers the same one (no ``schema`` and ``?schema=public`` are two channels).

    >>> from omnihook.store.config import parse_store_url
    >>> channel(parse_store_url("postgresql://db/app?schema=tenant_1"), "events")
    'omnihook_events_tenant_1'
    """
    name = f"omnihook_{topic}" + (f"_{config.schema}" if config.schema else "")
    if len(name.encode()) > _MAX_CHANNEL:
        name = f"omnihook_{topic}_{hashlib.sha256(name.encode()).hexdigest()[:32]}"
    return name


class StoreWatch:
    """Calls ``on_change`` (in the running event loop) after another connection commits work
    on ``channel``; a thread of its own does the waiting."""

    def __init__(
        self,
        database: Database,
        channel: str,
        on_change: Callable[[], None],
        *,
        interval: float = 0.02,
        retry_after: float = 1.0,
    ) -> None:
        self.database = database
        self.channel = channel
        self.on_change = on_change
        self.interval = interval
        self.retry_after = retry_after
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = False  # a call is queued in the loop: later changes ride along

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        """Start watching (in a daemon thread)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        watch = self._listen if self.database.dialect == "postgresql" else self._poll_version
        self._thread = threading.Thread(target=watch, name="omnihook-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop watching: the thread ends within a moment (a daemon thread, it is not waited
        for longer than :data:`_JOIN_TIMEOUT`, should it hang on an unanswered connect)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, _JOIN_TIMEOUT)

    # -- on the watch's thread -------------------------------------------------------------------

    def _changed(self) -> None:
        if self._pending or self._loop is None:
            return
        self._pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody left to wake
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        self._pending = False
        self.on_change()

    def _listen(self) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        assert self.database.config.conninfo is not None
        conninfo = make_conninfo(self.database.config.conninfo, **_KEEPALIVE)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._changed()  # whatever was committed while nobody listened
                    while not self._stopping.is_set():
                        for _ in connection.notifies(timeout=_STOP_CHECK, stop_after=1):
                            self._changed()
            except Exception as exc:  # whatever it is, polling goes on: try again later
                self._trouble(exc)

    def _poll_version(self) -> None:
        path = self.database.config.path
        assert path is not None
        while not self._stopping.is_set():
            try:
                # Read-only, no transaction held: data_version is read from the shared WAL index.
                connection = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
                try:
                    seen = connection.execute("PRAGMA data_version").fetchone()[0]
                    self._changed()  # whatever was committed while nobody watched
                    while not self._stopping.wait(self.interval):
                        version = connection.execute("PRAGMA data_version").fetchone()[0]
                        if version != seen:
                            seen = version
                            self._changed()
                finally:
                    connection.close()
            except Exception as exc:  # whatever it is, polling goes on: try again later
                self._trouble(exc)

    def _trouble(self, exc: Exception) -> None:
        # At debug level: the store's own users report an unreachable store; the watch only
        # retries, and the loop it wakes polls meanwhile.
        logger.debug("store watch on %s: %s; retrying", self.channel, exc)
        self._stopping.wait(self.retry_after)
