"""Two databases behind one small interface: run a unit of work in a transaction, in a thread.

Both backends use their blocking driver (sqlite3, psycopg) on dedicated threads, so the SQL of the
stores is written once. SQLite has one connection on one thread (SQLite serialises writers
anyway; WAL lets other processes read and queue for writes), and the units of work queued meanwhile
share a transaction (see :meth:`SQLiteDatabase.run`). PostgreSQL has a pool of connections,
one per thread, so several transactions (and several processes) proceed at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import sqlite3
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar

from .config import StoreConfig
from .errors import StoreError, StoreFailed, StoreRejected, StoreUnavailable
from .keys import storable_params
from .schema import migrate

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = [
    "SWITCH_INTERVAL",
    "Database",
    "PostgresDatabase",
    "SQLiteDatabase",
    "Tx",
    "favour_database_threads",
    "open_database",
    "placeholders",
]

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]
ValueKind = Literal["time", "integer", "text"]


class Tx:
    """The handle a unit of work gets: ``execute`` with ``?`` placeholders, on either database."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect

    def execute(self, sql: str, params: Params = (), *, plan_each_time: bool = False) -> Tx:
        """Run ``sql``; strings the database cannot hold (NUL, lone surrogates) are made
        storable on the way (see :mod:`omnihook.store.keys`).

        ``plan_each_time``: PostgreSQL plans the statement afresh at every run instead of
        keeping a prepared statement. psycopg prepares a statement run five times, and
        PostgreSQL may then keep one generic plan for it; a claim's plan made while the table
        was empty read every earlier event for each candidate (351 ms a claim with 2,143
        pending, growing with the square of the backlog) until statistics were gathered.
        """
        if self.dialect == "postgresql":
            sql = _to_pyformat(sql)
            if plan_each_time:
                self._cursor.execute(sql, storable_params(params), prepare=False)
                return self
        self._cursor.execute(sql, storable_params(params))
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lock_rows(self) -> str:
        """What to append to a claim query so that concurrent claimers skip each other's rows."""
        return " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""

    def use_index(self, index: str) -> str:
        """What to put after a table name so that SQLite reads it through ``index``. Without
        statistics, SQLite's planner prefers the (status, id) index for ``status IN (...)`` and
        then scans every active row; PostgreSQL's planner has statistics and needs no hint."""
        return f" INDEXED BY {index}" if self.dialect == "sqlite" else ""

    def typed(self, kind: ValueKind) -> str:
        """A placeholder whose value has a type: PostgreSQL types a ``VALUES`` column of NULL
        parameters as text, which a number column refuses; SQLite keeps each value's own type.

        >>> Tx(None, "postgresql").typed("time")
        'CAST(? AS DOUBLE PRECISION)'
        """
        if self.dialect == "sqlite":
            return "?"
        return f"CAST(? AS {_POSTGRES_TYPES[kind]})"

    def values(self, name: str, columns: Mapping[str, ValueKind], rows: int) -> str:
        """``WITH name (column, ...) AS (VALUES (?, ...), ...)``: ``rows`` rows of parameters,
        each :meth:`typed`, for a statement that writes a whole batch at once.

        >>> Tx(None, "sqlite").values("v", {"id": "integer", "note": "text"}, 2)
        'WITH v (id, note) AS (VALUES (?, ?), (?, ?)) '
        """
        row = "(" + ", ".join(self.typed(kind) for kind in columns.values()) + ")"
        return f"WITH {name} ({', '.join(columns)}) AS (VALUES {', '.join([row] * rows)}) "

    def notify(self, channel: str) -> None:
        """Tell the watches of ``channel`` (:mod:`omnihook.store.watching`) when this transaction
        commits: PostgreSQL's NOTIFY; nothing on SQLite, whose watches see every commit."""
        if self.dialect == "postgresql":
            self.execute("SELECT pg_notify(?, '')", (channel,))

    @property
    def for_update(self) -> str:
        """What to append to a read that the transaction will write back (SQLite's write lock,
        taken at BEGIN IMMEDIATE, already covers it)."""
        return " FOR UPDATE" if self.dialect == "postgresql" else ""


_POSTGRES_TYPES = {"time": "DOUBLE PRECISION", "integer": "BIGINT", "text": "TEXT"}


def placeholders(values: Sequence[Any]) -> str:
    """``?, ?, ?``: one placeholder per value, for ``IN (...)`` lists."""
    return ", ".join("?" * len(values))


_PYFORMAT_CACHE: dict[str, str] = {}


def _to_pyformat(sql: str) -> str:
    converted = _PYFORMAT_CACHE.get(sql)
    if converted is None:
        converted = sql.replace("%", "%%").replace("?", "%s")
        _PYFORMAT_CACHE[sql] = converted
    return converted


class Database(ABC):
    """A store's database: opened (and migrated) once, then used through :meth:`run`."""

    dialect: Dialect

    @property
    def write_concurrency(self) -> int:
        """How many write transactions are worth running at once (for group commits)."""
        return 1

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._ready = False

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to this version of omnihook (no-op when open)."""

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` finished (and :meth:`close` was not called since)."""
        return self._ready

    @abstractmethod
    async def close(self) -> None:
        """Close every connection."""

    @abstractmethod
    async def run(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction on a database thread; commit if it returns.

        Raises :class:`StoreUnavailable` when the database cannot be reached or written.
        """

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""
        await self.run(lambda tx: tx.execute("SELECT 1").fetchone())

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SQLiteDatabase(Database):
    dialect: Dialect = "sqlite"

    @property
    def write_concurrency(self) -> int:
        # One thread writes; a second batch formed meanwhile waits in line and starts the moment
        # the first commits, so the disk never waits for the event loop to gather the next one.
        return 2

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        # Units of work waiting for the database thread; see run().
        self._pending: collections.deque[_Unit[Any]] = collections.deque()
        self._pending_lock = threading.Lock()
        self._draining = False

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omnihook-sqlite")
        try:
            await self._call(self._connect)
            await self.run(lambda tx: migrate(tx))
            self._ready = True
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> None:
        assert self.config.path is not None
        path = self.config.path
        if path.parent != path:
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Readable by its owner only: it holds every payload (names, emails, messages).
            # SQLite gives its -wal and -shm files the database file's mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connection = sqlite3.connect(
            path,
            timeout=self.config.busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.config.synchronous.upper()}")
        connection.execute(f"PRAGMA busy_timeout={self.config.busy_timeout_ms}")
        connection.execute("PRAGMA foreign_keys=ON")
        self._connection = connection

    async def close(self) -> None:
        self._ready = False
        executor, self._executor = self._executor, None
        if executor is None:
            return
        connection, self._connection = self._connection, None
        if connection is not None:
            await asyncio.get_running_loop().run_in_executor(executor, connection.close)
        executor.shutdown(wait=True)

    async def run(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in a transaction on the database thread.

        Units queued while the thread is busy share its next transaction, each in a savepoint
        of its own: a commit (an fsync) is the costly part of a small write, and the event
        store, the worker's outcomes and the SQL CRM each commit often. A unit that fails for
        its own sake (its data, a constraint, an error in its code) is rolled back alone, as if
        it had run in a transaction of its own; a failure of the store (a full disk, a lock, a
        read-only file) fails every unit of the transaction."""
        executor = self._executor
        if executor is None:
            raise StoreError("the store is not open")
        unit: _Unit[T] = _Unit(work, asyncio.get_running_loop())
        with self._pending_lock:
            self._pending.append(unit)
            start, self._draining = not self._draining, True
        if start:
            try:
                executor.submit(self._drain)
            except RuntimeError:  # closed meanwhile
                with self._pending_lock:
                    self._pending.clear()
                    self._draining = False
                raise StoreError("the store is not open") from None
        try:
            return await unit.future
        except StoreError:
            raise
        except Exception as exc:
            raise _sqlite_failure(self.config.display, exc) from exc

    def _drain(self) -> None:
        """On the database thread: run what is pending, a shared transaction at a time."""
        while True:
            with self._pending_lock:
                if not self._pending:
                    self._draining = False
                    return
                units = [self._pending.popleft() for _ in range(min(len(self._pending), 256))]
            try:
                outcomes = self._transaction(units)
            except BaseException as exc:  # never leave a caller waiting
                outcomes = [(False, exc)] * len(units)
            for unit, outcome in zip(units, outcomes, strict=True):
                unit.settle(outcome)

    def _transaction(self, units: list[_Unit[Any]]) -> list[_Outcome]:
        """Run ``units`` in one transaction; the outcome of each: ``(True, result)`` or
        ``(False, exception)``."""
        try:
            if self._connection is None:
                # Dropped after a read-only error (below): open the file again, as it is now.
                self._connect()
        except Exception as exc:
            return [(False, exc)] * len(units)
        connection = self._connection
        assert connection is not None
        cursor = connection.cursor()
        tx = Tx(cursor, "sqlite")
        outcomes: list[_Outcome] = []
        try:
            # IMMEDIATE takes the write lock at once, so two processes never both read, then
            # both try to write (which SQLite would refuse to one of them).
            cursor.execute("BEGIN IMMEDIATE")
            if len(units) == 1:  # alone: its failure is the transaction's
                outcomes.append((True, units[0].work(tx)))
            else:
                for unit in units:
                    cursor.execute("SAVEPOINT unit")
                    try:
                        result = unit.work(tx)
                    except Exception as exc:
                        if not _unit_at_fault(exc) or not connection.in_transaction:
                            raise  # the store's failure, not the unit's: the whole round fails
                        cursor.execute("ROLLBACK TO unit")
                        outcomes.append((False, exc))
                    else:
                        outcomes.append((True, result))
                    cursor.execute("RELEASE unit")
            cursor.execute("COMMIT")
            return outcomes
        except BaseException as exc:
            if connection.in_transaction:
                connection.rollback()
            if _sqlite_code(exc) == _SQLITE_READONLY:
                # SQLite opens a file it cannot write read-only, without a word, and the
                # connection stays so; a new one sees the file as it is now (made writable).
                self._connection = None
                connection.close()
            return [(False, exc)] * len(units)
        finally:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed just above
                cursor.close()

    async def _call(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function)
        except StoreError:
            raise
        except Exception as exc:
            raise _sqlite_failure(self.config.display, exc) from exc


_SQLITE_READONLY = 8
# Primary result codes: SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_CANTOPEN.
_SQLITE_CAUSES = {3: "permission missing", 5: "lock held", 6: "lock held", 13: "disk full",
                  14: "unreachable"}  # fmt: skip
_OS_CAUSES = {errno.EACCES: "permission missing", errno.EPERM: "permission missing",
              errno.EROFS: "read-only", errno.ENOSPC: "disk full"}  # fmt: skip
# The data itself: a value SQLite cannot hold (too big, an integer out of range, text that is
# not Unicode). Integrity and binding errors are omnihook's own (a bug, a schema changed by hand).
_SQLITE_REJECTED = (sqlite3.DataError, UnicodeError, OverflowError)
_SQLITE_FAILED = (sqlite3.IntegrityError, sqlite3.InterfaceError)


_Outcome = tuple[bool, Any]


class _Unit(Generic[T]):
    """A unit of work waiting for the SQLite thread, and the future its caller awaits."""

    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Callable[[Tx], T], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()

    def settle(self, outcome: _Outcome) -> None:
        """From the database thread: hand ``outcome`` to the caller's event loop."""
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            self.loop.call_soon_threadsafe(self._set, outcome)

    def _set(self, outcome: _Outcome) -> None:
        if self.future.done():  # the caller stopped waiting (cancelled, timed out)
            return
        ok, value = outcome
        if ok:
            self.future.set_result(value)
        else:
            self.future.set_exception(value)


def _unit_at_fault(exc: Exception) -> bool:
    """Whether a unit's failure is its own (its data, a constraint, its code), so that the units
    sharing its transaction may still commit; else the store failed (disk, lock, file)."""
    if isinstance(exc, _SQLITE_REJECTED + _SQLITE_FAILED):
        return True
    if isinstance(exc, sqlite3.ProgrammingError):
        return "binding" in str(exc)
    return not isinstance(exc, sqlite3.Error | OSError)


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _sqlite_failure(display: str, exc: Exception) -> StoreError:
    """What a failed SQLite call means to the caller: the data refused (a value SQLite cannot
    hold), this write failed (a constraint, a binding: omnihook's fault), or the store unusable
    now (a read-only or full disk, a lock, a broken file, a missing directory)."""
    if isinstance(exc, _SQLITE_REJECTED):
        return StoreRejected(f"SQLite store {display} refused the data: {exc}")
    binding = isinstance(exc, sqlite3.ProgrammingError) and "binding" in str(exc)
    if isinstance(exc, _SQLITE_FAILED) or binding:
        return StoreFailed(f"SQLite store {display} failed a write: {exc}")
    code = _sqlite_code(exc)
    if code == _SQLITE_READONLY:
        return StoreUnavailable(
            f"SQLite store {display} is read-only ({exc}): make the file and its folder "
            "writable by this user; omnihook keeps trying",
            "read-only",
        )
    cause = _SQLITE_CAUSES.get(code or 0, "unavailable")
    if isinstance(exc, OSError):  # creating the file or its folder
        cause = _OS_CAUSES.get(exc.errno or 0, "unavailable")
    if isinstance(exc, sqlite3.Error | OSError):
        return StoreUnavailable(f"SQLite store {display}: {_one_line(str(exc))}", cause)
    return StoreUnavailable(f"SQLite store {display}: {type(exc).__name__}: {exc}")


class PostgresDatabase(Database):
    dialect: Dialect = "postgresql"

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        import psycopg_pool  # only PostgreSQL users pay for importing the driver

        assert self.config.conninfo is not None
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.pool_size, thread_name_prefix="omnihook-pg"
        )
        self._pool = psycopg_pool.ConnectionPool(
            self.config.conninfo,
            min_size=1,
            max_size=self.config.pool_size,
            open=False,
            configure=self._configure,
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=self.config.connect_timeout,
            reconnect_timeout=0,  # keep trying forever: the database may come back
        )
        try:
            if self.config.schema:
                await self._call(self._create_schema)
            await self._call(lambda: self._require_pool().open(wait=False))
            await self.run(lambda tx: migrate(tx))
            self._ready = True
        except BaseException:
            await self.close()
            raise

    def _create_schema(self) -> None:
        import psycopg

        assert self.config.conninfo is not None
        with psycopg.connect(self.config.conninfo, autocommit=True) as connection:
            # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
            # exists: a least-privilege role given an existing schema must not need it.
            found = connection.execute(
                "SELECT has_schema_privilege(current_user, oid, 'USAGE'), current_user "
                "FROM pg_namespace WHERE nspname = %s",
                (self.config.schema,),
            ).fetchone()
            if found is None:
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.config.schema}"')
            elif not found[0]:
                # PostgreSQL would skip the schema in search_path without a word, then fail on
                # "no schema has been selected": say what is missing instead.
                raise StoreUnavailable(
                    f"PostgreSQL store {self.config.display}: role {found[1]} may not use "
                    f'schema "{self.config.schema}"; '
                    + _grant_hint(self.config, "for schema usage", found[1]),
                    "permission missing",
                )

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        if self.config.schema:
            connection.execute(f'SET search_path TO "{self.config.schema}"')
            connection.commit()

    def _require_pool(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    async def close(self) -> None:
        self._ready = False
        pool, self._pool = self._pool, None
        executor, self._executor = self._executor, None
        if pool is not None and executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, pool.close)
        if executor is not None:
            executor.shutdown(wait=True)

    async def run(self, work: Callable[[Tx], T]) -> T:
        return await self._call(lambda: self._transaction(work))

    def _transaction(self, work: Callable[[Tx], T]) -> T:
        with self._require_pool().connection() as connection, connection.cursor() as cursor:
            return work(Tx(cursor, "postgresql"))  # the pool commits on success

    async def _call(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function)
        except StoreError:
            raise
        except Exception as exc:
            raise _postgres_failure(self.config, exc) from exc


# SQLSTATEs of errors caused by the data itself: class 22 (a value out of range, NUL in text;
# but 22P05, text the database's encoding cannot hold, is the database's setting) and 54000 (an
# index entry too large). Class 23 (a constraint) is omnihook's own fault.
_PG_DATA = "22"
_PG_NOT_DATA = frozenset({"22P05"})
_PG_TOO_LARGE = "54000"


def _postgres_failure(config: StoreConfig, exc: Exception) -> StoreError:
    """What a failed PostgreSQL call means to the caller: the data refused, or the store
    unusable now (down, full, a privilege missing, a lock timeout), with the fix when known."""
    import psycopg
    import psycopg_pool

    where = f"PostgreSQL store {config.display}"
    if isinstance(exc, UnicodeError):
        return StoreRejected(f"{where} refused the data: {exc}")
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnavailable(f"{where}: {_one_line(str(exc))}", "unreachable")
    if not isinstance(exc, psycopg.Error):
        return StoreUnavailable(f"{where}: {type(exc).__name__}: {exc}")
    sqlstate = exc.sqlstate or ""
    message = _one_line(exc.diag.message_primary or str(exc))
    client_side = isinstance(exc, psycopg.DataError) and not sqlstate  # psycopg's own check
    if client_side or (
        sqlstate not in _PG_NOT_DATA
        and (sqlstate.startswith(_PG_DATA) or sqlstate == _PG_TOO_LARGE)
    ):
        return StoreRejected(f"{where} refused the data: {message} (SQLSTATE {sqlstate})")
    if isinstance(exc, psycopg.IntegrityError) or sqlstate in _PG_NOT_DATA:
        # 22P05: a character the database's encoding cannot hold, a setting that fails only
        # the writes that carry one: split from its batch, retried (503), not dropped.
        return StoreFailed(f"{where} failed a write: {message} (SQLSTATE {sqlstate})")
    if sqlstate == "42501":  # insufficient_privilege
        return StoreUnavailable(
            f"{where}: {message}; {_grant_hint(config, message)}", "permission missing"
        )
    detail = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return StoreUnavailable(f"{where}: {message}{detail}", _pg_cause(exc, sqlstate))


def _pg_cause(exc: Exception, sqlstate: str) -> str:
    import psycopg

    if sqlstate == "53100":  # disk_full
        return "disk full"
    if sqlstate == "25006":  # read_only_sql_transaction: a standby, or read-only by default
        return "read-only"
    if sqlstate in ("55P03", "57014", "40P01"):  # lock_not_available, query_canceled, deadlock
        return "lock held"
    if sqlstate.startswith("08") or isinstance(exc, psycopg.OperationalError):
        return "unreachable"
    return "unavailable"


def _grant_hint(config: StoreConfig, message: str, role: str = "<role>") -> str:
    """The grant that fixes a ``permission denied`` (as the database owner or a superuser)."""
    schema = config.schema or "public"
    tables = (
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}; '
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}'
    )
    if "for database" in message:
        return (
            f'create the schema first (CREATE SCHEMA "{schema}" AUTHORIZATION {role}) or '
            f"GRANT CREATE ON DATABASE <database> TO {role}"
        )
    if "for schema usage" in message:
        return f'GRANT USAGE ON SCHEMA "{schema}" TO {role}; {tables}'
    if "for schema" in message:
        return (
            "run omnihook once as the schema's owner to create or migrate its tables, or "
            f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO {role}'
        )
    return tables


def _one_line(text: str) -> str:
    return " ".join(text.split())


SWITCH_INTERVAL = 0.0005
"""The thread switch interval that :func:`favour_database_threads` sets (Python's default: 5 ms)."""


def favour_database_threads() -> None:
    """Let database threads take the GIL back sooner from a busy event loop.

    Every call into SQLite or libpq releases the GIL and must get it back; while the event loop
    is busy the database thread waits up to the switch interval each time. Measured on the
    receiver benchmark (SQLite store): about 3,500 accepted events/s at 5 ms, 4,600 at 0.5 ms. It
    is a process-wide setting: ``omnihook serve`` and ``omnihook worker`` call this; call it in
    your own server process if you embed a store.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)


def open_database(config: StoreConfig) -> Database:
    """The database object for a config (not opened yet)."""
    if config.kind == "sqlite":
        return SQLiteDatabase(config)
    return PostgresDatabase(config)
