"""The store's tables, created and migrated by omnihook itself, one numbered step at a time.

Each step runs once, in the transaction that records its number, so several processes starting
together migrate exactly once (PostgreSQL: an advisory lock; SQLite: the write lock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SchemaTooNew

if TYPE_CHECKING:
    from .database import Tx

__all__ = ["SCHEMA_VERSION", "migrate"]

# Column types differ by dialect only in these few places.
_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "time": "REAL"},
    "postgresql": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "blob": "BYTEA",
        "time": "DOUBLE PRECISION",
    },
}

_ACTIVE = "status IN ('pending', 'processing', 'failed')"


@dataclass(frozen=True)
class _Step:
    version: int
    statements: tuple[str, ...]
    then: Callable[[Tx], None] | None = None
    """Python to run after the statements, in the same transaction (filling a new column)."""


_STEPS: tuple[_Step, ...] = (
    _Step(
        1,
        (
            # Accepted deliveries. `room_key` orders handling: the room id, or (for room-less
            # offline messages) the event's own key. Times are Unix seconds.
            """CREATE TABLE events (
                id {id},
                dedup_key TEXT NOT NULL UNIQUE,
                room_key TEXT NOT NULL,
                room_id TEXT,
                type TEXT NOT NULL,
                body {blob} NOT NULL,
                received_at {time} NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at {time} NOT NULL,
                lease_owner TEXT,
                lease_expires_at {time},
                answer TEXT NOT NULL,
                handlers_done TEXT NOT NULL DEFAULT '[]',
                stale INTEGER,
                last_error TEXT,
                finished_at {time}
            )""",
            f"CREATE INDEX events_active_room ON events (room_key, id) WHERE {_ACTIVE}",
            f"CREATE INDEX events_active_due ON events (next_attempt_at, id) WHERE {_ACTIVE}",
            "CREATE INDEX events_status ON events (status, id)",
            "CREATE INDEX events_room ON events (room_id, id)",
            """CREATE TABLE attempts (
                event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                worker TEXT NOT NULL,
                started_at {time} NOT NULL,
                finished_at {time} NOT NULL,
                outcome TEXT NOT NULL,
                error TEXT,
                PRIMARY KEY (event_id, number)
            )""",
            # What handling has learnt about each room: the CRM ids to hand back to Rocket.Chat,
            # and how far the room's timeline has been handled (to flag stale events).
            """CREATE TABLE rooms (
                room_id TEXT PRIMARY KEY,
                crm_data TEXT NOT NULL DEFAULT '{{}}',
                stage INTEGER,
                newest_message_at {time},
                updated_at {time} NOT NULL
            )""",
            # The sender's durable outbox; deliveries to one (url, room) go out in order.
            """CREATE TABLE outbox (
                id {id},
                url TEXT NOT NULL,
                room_key TEXT NOT NULL,
                room_id TEXT,
                type TEXT,
                body {blob} NOT NULL,
                created_at {time} NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at {time} NOT NULL,
                lease_owner TEXT,
                lease_expires_at {time},
                last_status INTEGER,
                last_error TEXT,
                response_text TEXT,
                finished_at {time}
            )""",
            "CREATE INDEX outbox_active_room ON outbox (url, room_key, id) "
            "WHERE status IN ('pending', 'sending', 'failed')",
            "CREATE INDEX outbox_active_due ON outbox (next_attempt_at, id) "
            "WHERE status IN ('pending', 'sending', 'failed')",
            "CREATE INDEX outbox_status ON outbox (status, id)",
            """CREATE TABLE outbox_attempts (
                outbox_id BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                started_at {time} NOT NULL,
                elapsed {time} NOT NULL,
                status INTEGER,
                error TEXT,
                PRIMARY KEY (outbox_id, number)
            )""",
            # The last 200 body per (url, room): what Rocket.Chat would echo back as crmData.
            """CREATE TABLE outbox_crm_data (
                url TEXT NOT NULL,
                room_id TEXT NOT NULL,
                response_text TEXT NOT NULL,
                updated_at {time} NOT NULL,
                PRIMARY KEY (url, room_id)
            )""",
        ),
    ),
)

_STEPS += (
    _Step(
        2,
        (
            # What CRM adapters must remember between events: per adapter and key (a room, a
            # visitor), the ids they created (a note to update in place instead of duplicating).
            """CREATE TABLE crm_links (
                adapter TEXT NOT NULL,
                link_key TEXT NOT NULL,
                data TEXT NOT NULL,
                updated_at {time} NOT NULL,
                PRIMARY KEY (adapter, link_key)
            )""",
            # The embedded SQL CRM: one contact per visitor, one conversation per room, its messages.
            """CREATE TABLE crm_contacts (
                id {id},
                contact_key TEXT NOT NULL UNIQUE,
                visitor_id TEXT,
                username TEXT,
                name TEXT,
                first_name TEXT,
                last_name TEXT,
                email TEXT,
                phone TEXT,
                department TEXT,
                custom_fields TEXT NOT NULL DEFAULT '{{}}',
                first_seen {time} NOT NULL,
                last_seen {time} NOT NULL
            )""",
            "CREATE INDEX crm_contacts_email ON crm_contacts (email)",
            """CREATE TABLE crm_conversations (
                room_id TEXT PRIMARY KEY,
                contact_id BIGINT REFERENCES crm_contacts (id),
                status TEXT NOT NULL,
                department_id TEXT,
                agent TEXT,
                tags TEXT NOT NULL DEFAULT '[]',
                custom_fields TEXT NOT NULL DEFAULT '{{}}',
                started_at {time},
                closed_at {time},
                closer TEXT,
                last_event TEXT NOT NULL,
                updated_at {time} NOT NULL
            )""",
            "CREATE INDEX crm_conversations_contact ON crm_conversations (contact_id)",
            """CREATE TABLE crm_messages (
                room_id TEXT NOT NULL,
                message_key TEXT NOT NULL,
                ts {time} NOT NULL,
                author TEXT NOT NULL,
                author_kind TEXT NOT NULL,
                text TEXT NOT NULL,
                edited INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (room_id, message_key)
            )""",
        ),
    ),
)

_STEPS += (
    _Step(
        3,
        (
            # Claims take the oldest due rows first: with these, a claim reads only the rows it
            # takes, however long the backlog (instead of sorting every active row).
            f"CREATE INDEX events_active_id ON events (id) WHERE {_ACTIVE}",
            "CREATE INDEX outbox_active_id ON outbox (id) "
            "WHERE status IN ('pending', 'sending', 'failed')",
        ),
    ),
)

_STEPS += (
    _Step(
        4,
        (
            # One row that every health check rewrites: proof that a commit reaches the disk.
            """CREATE TABLE omnihook_health (
                id INTEGER PRIMARY KEY,
                checked_at {time} NOT NULL
            )""",
            "INSERT INTO omnihook_health (id, checked_at) VALUES (1, 0)",
        ),
    ),
)

_STEPS += (
    _Step(
        5,
        (
            # What the event is, beside its bytes (omnihook.contracts.event_identity): a rebuilt
            # event and a late real delivery of the same thing are one event. And where it came
            # from: 'webhook' (Rocket.Chat posted it) or 'reconcile' (rebuilt from its REST API).
            "ALTER TABLE events ADD COLUMN identity TEXT",
            "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook'",
            "CREATE UNIQUE INDEX events_identity ON events (identity) WHERE identity IS NOT NULL",
            # Named locks with an expiry: one process of many does a job (reconcile) at a time.
            """CREATE TABLE omnihook_locks (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                expires_at {time} NOT NULL
            )""",
        ),
        then=lambda tx: _fill_identities(tx),
    ),
)

_STEPS += (
    _Step(
        6,
        (
            # What processes sharing the store tell each other (omnihook.store.state): the last
            # reconcile, a CRM adapter's circuit; read by `omnihook status` and metrics.
            """CREATE TABLE omnihook_state (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at {time} NOT NULL
            )""",
            # Attempts that only waited (a rate limit, an open CRM circuit): not counted against
            # the handling policy's attempts.
            "ALTER TABLE events ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0",
            # The console's lists: events of one type, newest first; rooms by latest activity.
            "CREATE INDEX events_type ON events (type, id)",
            "CREATE INDEX rooms_updated ON rooms (updated_at)",
            "CREATE INDEX crm_links_key ON crm_links (link_key)",
            # The W3C traceparent of the request that stored the event (OpenTelemetry, when
            # tracing is on): the worker that handles it continues that trace.
            "ALTER TABLE events ADD COLUMN trace_context TEXT",
        ),
    ),
)

SCHEMA_VERSION = _STEPS[-1].version
"""The schema version this omnihook writes."""


def migrate(tx: Tx) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found before."""
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(7207811)")  # any fixed number: omnihook's lock
    if not _has_schema_table(tx):
        # Only when missing: CREATE ... IF NOT EXISTS needs the CREATE privilege even when the
        # table exists, which a least-privilege role running a migrated store does not have.
        tx.execute("CREATE TABLE IF NOT EXISTS omnihook_schema (version INTEGER NOT NULL)")
    row = tx.execute("SELECT MAX(version) FROM omnihook_schema").fetchone()
    found = int(row[0]) if row and row[0] is not None else 0
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the store's schema is version {found}, newer than this omnihook's {SCHEMA_VERSION}; "
            "upgrade omnihook"
        )
    types = _TYPES[tx.dialect]
    for step in _STEPS:
        if step.version <= found:
            continue
        for statement in step.statements:
            tx.execute(statement.format(**types))
        if step.then is not None:
            step.then(tx)
        tx.execute("INSERT INTO omnihook_schema (version) VALUES (?)", (step.version,))
    return found


def _fill_identities(tx: Tx) -> None:
    """Give the events stored before identities existed theirs, from their bodies, so that a
    rebuilt event or a late delivery of one of them is known as a duplicate (the first with an
    identity keeps it; one that cannot be parsed keeps none)."""
    from omnihook.contracts import ContractError, event_identity, parse_event

    from .keys import bounded_key

    last = 0
    while True:
        rows = tx.execute(
            "SELECT id, body FROM events WHERE id > ? AND identity IS NULL ORDER BY id LIMIT 500",
            (last,),
        ).fetchall()
        if not rows:
            return
        for event_id, body in rows:
            last = int(event_id)
            try:
                identity = bounded_key(event_identity(parse_event(bytes(body))))
            except ContractError:
                continue
            if identity is not None:
                tx.execute(
                    "UPDATE events SET identity = ? WHERE id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM events WHERE identity = ?)",
                    (identity, event_id, identity),
                )


def _has_schema_table(tx: Tx) -> bool:
    if tx.dialect == "postgresql":
        row = tx.execute("SELECT to_regclass('omnihook_schema') IS NOT NULL").fetchone()
    else:
        row = tx.execute(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'omnihook_schema'"
        ).fetchone()
    return bool(row and row[0])
