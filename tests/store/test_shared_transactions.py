"""SQLite's units of work share transactions: what is queued while the database thread is busy
commits together (one fsync), and a unit that fails for its own sake is rolled back alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from omnihook.store import StoreError
from omnihook.store.config import parse_store_url
from omnihook.store.database import SQLiteDatabase, Tx, open_database


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    database = open_database(parse_store_url(f"sqlite:///{tmp_path / 'shared.db'}"))
    assert isinstance(database, SQLiteDatabase)
    async with database:
        await database.run(lambda tx: tx.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
        yield database


def commits_of(database: SQLiteDatabase) -> list[str]:
    """Every COMMIT the connection runs from now on (SQLite's own statement trace)."""
    seen: list[str] = []
    connection = database._connection
    assert connection is not None
    connection.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


def insert(n: int, fail: Exception | None = None):  # type: ignore[no-untyped-def]
    def work(tx: Tx) -> int:
        tx.execute("INSERT INTO t (n) VALUES (?)", (n,))
        if fail is not None:
            raise fail
        return n

    return work


async def numbers(database: SQLiteDatabase) -> list[int]:
    rows = await database.run(lambda tx: tx.execute("SELECT n FROM t ORDER BY n").fetchall())
    return [int(n) for (n,) in rows]


async def test_units_queued_together_share_one_commit(database: SQLiteDatabase) -> None:
    commits = commits_of(database)
    results = await asyncio.gather(*(database.run(insert(n)) for n in range(200)))
    assert results == list(range(200))
    assert await numbers(database) == list(range(200))
    # All 200 were queued before the thread took the first: one transaction (at most a few,
    # 256 units each), not 200.
    assert 1 <= len(commits) <= 3, len(commits)


async def test_a_unit_failing_for_its_own_sake_is_rolled_back_alone(
    database: SQLiteDatabase,
) -> None:
    await database.run(insert(7))
    commits = commits_of(database)
    works = [insert(n) for n in range(100, 140)]
    works[10] = insert(110, ValueError("a bug in this unit"))  # its own row is undone
    works[20] = insert(7)  # a constraint: the key exists
    outcomes = await asyncio.gather(*(database.run(work) for work in works),
                                    return_exceptions=True)  # fmt: skip
    assert isinstance(outcomes[10], StoreError)
    assert "a bug in this unit" in str(outcomes[10])
    assert isinstance(outcomes[20], StoreError)
    assert "UNIQUE constraint failed" in str(outcomes[20])
    assert [o for i, o in enumerate(outcomes) if i not in (10, 20)] == [
        n for n in range(100, 140) if n not in (110, 120)
    ]
    assert await numbers(database) == [7] + [n for n in range(100, 140) if n not in (110, 120)]
    assert len(commits) <= 3  # the others still shared their commit


async def test_a_store_failure_fails_every_unit_of_its_transaction(
    database: SQLiteDatabase, tmp_path: Path
) -> None:
    # An error SQLite raises about the database rather than one unit's data (here: an ATTACH,
    # which no transaction may run; in life a full disk, a lock, a read-only file) is not one
    # unit's fault: nothing of the round is kept, and every caller hears of it.
    def locked_out(tx: Tx) -> None:
        tx.execute("INSERT INTO t (n) VALUES (1000)")
        tx.execute("ATTACH DATABASE ? AS other", (str(tmp_path / "missing" / "x.db"),))

    works = [insert(n) for n in range(200, 220)]
    works[5] = locked_out
    outcomes = await asyncio.gather(*(database.run(work) for work in works),
                                    return_exceptions=True)  # fmt: skip
    assert all(isinstance(outcome, StoreError) for outcome in outcomes), outcomes
    assert await numbers(database) == []
    assert await database.run(insert(1)) == 1  # and the next round works
