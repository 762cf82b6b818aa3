"""omnihook.store: durable storage for both ends, on SQLite (embedded) or PostgreSQL.

>>> async with Store.open("sqlite:///./omnihook.db") as store:    # doctest: +SKIP
...     accepted = await store.events.accept(new_event)
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from .backoff import backoff_delay
from .config import DEFAULT_STORE_URL, STORE_ENV, StoreConfig, parse_store_url
from .crm_links import CrmLinks
from .database import (
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    Tx,
    favour_database_threads,
    open_database,
)
from .errors import SchemaTooNew, StoreError, StoreFailed, StoreRejected, StoreUnavailable
from .events import (
    EVENT_SOURCES,
    EVENT_STATUSES,
    Accepted,
    AttemptRecord,
    ClaimedEvent,
    EventQuery,
    EventSource,
    EventStatus,
    EventStore,
    Finish,
    NewEvent,
    ReplayResult,
    RoomState,
    RoomSummary,
    StoredEvent,
)
from .health import DEFAULT_PROBE_TIMEOUT, WriteProbe
from .keys import MAX_KEY_CHARS, bounded_key, storable_text
from .leased import Backlog
from .locks import Locks
from .outbox import (
    OUTBOX_STATUSES,
    OutboxAttempt,
    OutboxEntry,
    OutboxItem,
    OutboxStatus,
    OutboxStore,
)
from .redaction import (
    MASK,
    RedactingLogFilter,
    escape_controls,
    protect_logging,
    redact,
    register_secret,
)
from .schema import SCHEMA_VERSION
from .sqlcrm import (
    ContactRecord,
    ContactRow,
    ConversationListing,
    ConversationRecord,
    ConversationRow,
    MessageRecord,
    SqlCrm,
)
from .state import SharedState, StateRecord

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "DEFAULT_STORE_URL",
    "EVENT_SOURCES",
    "EVENT_STATUSES",
    "MASK",
    "MAX_KEY_CHARS",
    "OUTBOX_STATUSES",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "Accepted",
    "AttemptRecord",
    "Backlog",
    "ClaimedEvent",
    "ContactRecord",
    "ContactRow",
    "ConversationListing",
    "ConversationRecord",
    "ConversationRow",
    "CrmLinks",
    "Database",
    "EventQuery",
    "EventSource",
    "EventStatus",
    "EventStore",
    "Finish",
    "Locks",
    "MessageRecord",
    "NewEvent",
    "OutboxAttempt",
    "OutboxEntry",
    "OutboxItem",
    "OutboxStatus",
    "OutboxStore",
    "PostgresDatabase",
    "RedactingLogFilter",
    "ReplayResult",
    "RoomState",
    "RoomSummary",
    "SQLiteDatabase",
    "SchemaTooNew",
    "SharedState",
    "SqlCrm",
    "StateRecord",
    "Store",
    "StoreConfig",
    "StoreError",
    "StoreFailed",
    "StoreRejected",
    "StoreUnavailable",
    "StoredEvent",
    "Tx",
    "WriteProbe",
    "backoff_delay",
    "bounded_key",
    "escape_controls",
    "favour_database_threads",
    "open_database",
    "parse_store_url",
    "protect_logging",
    "redact",
    "register_secret",
    "storable_text",
]


class Store:
    """One database with both sides' tables: ``events`` (receiver) and ``outbox`` (sender)."""

    def __init__(self, url_or_config: str | StoreConfig) -> None:
        self.config = (
            parse_store_url(url_or_config) if isinstance(url_or_config, str) else url_or_config
        )
        self.database = open_database(self.config)
        self.events = EventStore(self.database)
        self.outbox = OutboxStore(self.database)
        self.crm_links = CrmLinks(self.database)
        self.sql_crm = SqlCrm(self.database)
        self.locks = Locks(self.database)
        self.state = SharedState(self.database)
        self.health = WriteProbe(self.database, self.connect)
        """Whether the store can write now (``await store.check_writable()``)."""
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def open(cls, url_or_config: str | StoreConfig) -> Store:
        """A store for ``async with``: opened (and migrated) on entry, closed on exit."""
        return cls(url_or_config)

    async def connect(self) -> None:
        """Open the database and bring its schema up to date (no-op when already open).

        Raises :class:`StoreUnavailable` if the database cannot be reached; a later call tries
        again, so a server can start before its database and recover when it comes back.
        """
        if self.database.is_open:
            return
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if not self.database.is_open:
                await self.database.open()

    async def check_writable(self) -> None:
        """Return if a delivery could be stored now; else raise :class:`StoreUnavailable`
        naming the cause (full disk, read-only file, missing privilege, lock held too long).

        A real write with a deadline (:class:`WriteProbe`), shared by concurrent callers and
        remembered for a second: cheap enough for a load balancer's health checks.
        """
        await self.health.check()

    async def close(self) -> None:
        await self.events.close()
        await self.outbox.close()
        await self.sql_crm.close()
        await self.database.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
