"""A store at its edges: one poison write among many, values the databases cannot hold, and real
faults (read-only file, full disk, lock held, privileges missing) reported as unavailable, with
recovery without a restart."""

from __future__ import annotations

import asyncio
import gc
import hashlib
from pathlib import Path
from typing import Any

import pytest

from omnihook.store import (
    MAX_KEY_CHARS,
    ContactRecord,
    ConversationRecord,
    MessageRecord,
    NewEvent,
    Store,
    StoreFailed,
    StoreRejected,
    StoreUnavailable,
    WriteProbe,
    bounded_key,
    parse_store_url,
)

from ..faults import LeastPrivilegeRole, fill, immutable, sqlite_locked, tiny_disk


def new(body: str, room: str | None = "R1", at: float = 100.0) -> NewEvent:
    raw = body.encode()
    return NewEvent(hashlib.sha256(raw).hexdigest(), room, "Message", raw, at)


async def test_one_poison_delivery_fails_alone_and_the_63_beside_it_are_committed(
    store_url: str,
) -> None:
    poison = NewEvent(None, "R-poison", "Message", b"{}", 100.0)  # type: ignore[arg-type]
    valid = [new(f'{{"n":{n}}}', room=f"R{n % 5}") for n in range(63)]
    async with Store.open(store_url) as store:
        deliveries = [*valid[:30], poison, *valid[30:]]
        outcomes = await asyncio.gather(
            *(store.events.accept(d) for d in deliveries), return_exceptions=True
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failed) == 1
        # A write omnihook itself got wrong (NOT NULL): retried later (503), not dropped (422).
        assert isinstance(outcomes[30], StoreFailed)
        assert "failed a write" in str(outcomes[30])
        stored = await store.events.find(limit=100)
        assert sorted(e.dedup_key for e in stored) == sorted(d.dedup_key for d in valid)
        # Each room's events are still in arrival order.
        for room in ("R0", "R1"):
            ids = [e.id for e in stored if e.room_id == room]
            bodies = [(await store.events.get(i)).body for i in sorted(ids)]  # type: ignore[union-attr]
            assert bodies == [d.body for d in valid if d.room_id == room]


async def test_a_value_the_database_cannot_hold_is_rejected_alone(store_url: str) -> None:
    # SQLite cannot hold an integer past 64 bits; PostgreSQL cannot read "soon" as a number.
    received_at: Any = 2**70 if store_url.startswith("sqlite") else "soon"
    poison = NewEvent("f" * 64, "R-poison", "Message", b"{}", received_at)
    valid = [new(f'{{"v":{n}}}', room=f"R{n % 3}") for n in range(63)]
    async with Store.open(store_url) as store:
        outcomes = await asyncio.gather(
            *(store.events.accept(d) for d in [poison, *valid]), return_exceptions=True
        )
        assert isinstance(outcomes[0], StoreRejected)
        assert "refused the data" in str(outcomes[0])
        assert not any(isinstance(o, BaseException) for o in outcomes[1:])
        assert len(await store.events.find(limit=100)) == 63


async def test_a_room_id_longer_than_an_index_allows_is_kept_shortened(store_url: str) -> None:
    huge = "r" * 100_000
    async with Store.open(store_url) as store:
        first = await store.events.accept(new('{"a":1}', room=huge))
        second = await store.events.accept(new('{"a":2}', room=huge))
        other = await store.events.accept(new('{"a":3}', room=huge[:-1] + "s"))
        assert not first.duplicate
        assert not second.duplicate
        listed = await store.events.find(room_id=huge)
        assert [e.id for e in listed] == [second.event_id, first.event_id]
        assert listed[0].room_id == bounded_key(huge)
        assert len(listed[0].room_id or "") < MAX_KEY_CHARS + 40
        # One room: its second event waits for the first; the other room's goes at once.
        claimed = await store.events.claim("w", 10, 30, now=2e9)
        assert sorted(c.id for c in claimed) == sorted([first.event_id, other.event_id])
        await store.crm_links.update("hubspot", huge, {"noteId": "n1"}, 1.0)
        assert await store.crm_links.get("hubspot", huge) == {"noteId": "n1"}
        assert await store.crm_links.get("hubspot", huge[:-1] + "x") == {}


async def test_the_sql_crm_keeps_nul_lone_surrogates_and_huge_keys(store_url: str) -> None:
    email = "e" * 5000 + "@example.com"
    contact = ContactRecord(
        contact_key="email:" + email,
        visitor_id=None,
        username=None,
        name="Nul\x00Name",
        first_name=None,
        last_name="Name",
        email=email,
        phone=None,
        department=None,
    )
    conversation = ConversationRecord(room_id="R" * 4000, last_event="Message", status="open")
    messages = [MessageRecord("m" * 3000, 1.0, "Jane", "visitor", "a\x00b \ud83d end", False)]
    async with Store.open(store_url) as store:
        contact_id = await store.sql_crm.record(contact, conversation, messages, now=10.0)
        again = await store.sql_crm.record(contact, conversation, messages, now=11.0)
        assert contact_id == again
        found = await store.sql_crm.conversation("R" * 4000)
        assert found is not None
        _, person, kept = found
        assert person is not None
        assert person.name == "Nul\ufffdName"
        assert [m.text for m in kept] == ["a\ufffdb \ufffd end"]
        assert (await store.sql_crm.contacts(search="eeee"))[0].id == contact_id


async def test_an_error_text_with_nul_is_recorded(store_url: str) -> None:
    from omnihook.store import Finish

    async with Store.open(store_url) as store:
        await store.events.accept(new('{"e":1}'))
        [claimed] = await store.events.claim("w", 1, 30, now=2e9)
        failure = Finish("dead", 1.0, 2.0, error="CRM said \x00\ud800 no")
        assert await store.events.finish(claimed, "w", failure)
        stored = await store.events.get(claimed.id)
        assert stored is not None
        assert stored.last_error == "CRM said \ufffd\ufffd no"


# -- SQLite faults -------------------------------------------------------------------------------


def sqlite_url(path: Path, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


async def test_a_read_only_sqlite_file_is_reported_and_written_once_writable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "omnihook.db"
    async with Store.open(sqlite_url(path)) as first:  # create and migrate it
        await first.events.accept(new('{"before":1}'))
    store = Store(sqlite_url(path))
    store.health.max_age = 0
    try:
        with immutable(path):
            await store.connect()  # opens (reading works), read-only without a word from SQLite
            assert len(await store.events.find()) == 1
            with pytest.raises(StoreUnavailable, match="read-only"):
                await store.check_writable()
            with pytest.raises(StoreUnavailable, match="read-only"):
                await store.events.accept(new('{"during":1}'))
        # Writable again: the same store object writes, no restart.
        await store.check_writable()
        await store.events.accept(new('{"after":1}'))
        assert len(await store.events.find()) == 2
    finally:
        await store.close()


async def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "omnihook.db"
    async with Store.open(sqlite_url(path)) as store:
        await store.events.accept(new('{"a":1}'))
        assert path.stat().st_mode & 0o777 == 0o600
        for sidecar in (path.with_name("omnihook.db-wal"), path.with_name("omnihook.db-shm")):
            if sidecar.exists():
                assert sidecar.stat().st_mode & 0o077 == 0


async def test_a_full_disk_is_unavailable_and_the_store_recovers_when_room_is_made(
    tmp_path: Path,
) -> None:
    with tiny_disk(tmp_path / "disk", size_kib=2048) as disk:
        url = sqlite_url(disk / "omnihook.db")
        async with Store.open(url) as store:
            store.health.max_age = 0
            await store.events.accept(new('{"before":1}'))
            filler = fill(disk)
            failure: StoreUnavailable | None = None
            for n in range(200):  # the pages free in the file go first, then the disk
                try:
                    await store.events.accept(new(f'{{"big":"{n:04d}{"x" * 8000}"}}'))
                except StoreUnavailable as exc:
                    failure = exc
                    break
            assert failure is not None
            assert "full" in str(failure)
            with pytest.raises(StoreUnavailable, match="full"):
                await store.check_writable()
            filler.unlink()
            await store.check_writable()
            await store.events.accept(new('{"after":1}'))


async def test_a_lock_held_too_long_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "omnihook.db"
    async with Store.open(sqlite_url(path, busy_timeout=100)) as store:
        store.health.max_age = 0
        with sqlite_locked(path):
            with pytest.raises(StoreUnavailable, match="locked"):
                await store.check_writable()
            with pytest.raises(StoreUnavailable, match="locked"):
                await store.events.accept(new('{"a":1}'))
        await store.check_writable()


async def test_the_write_probe_has_a_deadline(tmp_path: Path) -> None:
    path = tmp_path / "omnihook.db"
    async with Store.open(sqlite_url(path, busy_timeout=5000)) as store:
        probe = WriteProbe(store.database, timeout=0.2)
        with sqlite_locked(path), pytest.raises(StoreUnavailable, match=r"within 0\.2 s"):
            await probe.check()
        await probe.check()  # the lock is gone: the stuck write goes through, then this one


# -- PostgreSQL privileges ---------------------------------------------------------------------


async def test_a_least_privilege_role_uses_an_existing_schema_without_create() -> None:
    with LeastPrivilegeRole() as role:
        async with Store.open(role.owner_url):  # the owner creates and migrates the schema
            pass
        store = Store(role.url)
        store.health.max_age = 0  # every check probes (a success is otherwise kept for 1 s)
        try:
            with pytest.raises(
                StoreUnavailable, match=r"may not use schema.*GRANT USAGE ON SCHEMA"
            ):
                await store.connect()
            role.grant_usage()  # no CREATE on the database or the schema
            await store.check_writable()
            await store.events.accept(new('{"lp":1}'))
            role.admin(f'REVOKE INSERT ON ALL TABLES IN SCHEMA "{role.schema}" FROM {role.role}')
            with pytest.raises(StoreUnavailable, match="GRANT SELECT, INSERT"):
                await store.check_writable()
            with pytest.raises(StoreUnavailable, match="GRANT SELECT, INSERT"):
                await store.events.accept(new('{"lp":2}'))
            role.grant_usage()
            await store.check_writable()  # back as soon as the grant is given
            await store.events.accept(new('{"lp":3}'))
        finally:
            await store.close()


async def test_a_missing_schema_without_create_privilege_names_the_fix() -> None:
    with LeastPrivilegeRole() as role:
        store = Store(role.url)
        try:
            with pytest.raises(StoreUnavailable, match=r'CREATE SCHEMA "lp_.*" AUTHORIZATION'):
                await store.connect()
            message = ""
            try:
                await store.connect()
            except StoreUnavailable as exc:
                message = str(exc)
            assert "\n" not in message  # one line at start
        finally:
            await store.close()


async def test_the_deadline_covers_opening_the_store_too(tmp_path: Path) -> None:
    path = tmp_path / "omnihook.db"
    async with Store.open(sqlite_url(path)):
        pass
    store = Store(sqlite_url(path, busy_timeout=5000))  # not open yet: opening waits on the lock
    store.health.timeout = 0.3
    try:
        with sqlite_locked(path), pytest.raises(StoreUnavailable) as failure:
            await store.check_writable()
        # "timeout", not "lock held" 5 s later: the health check did not wait for the open.
        assert failure.value.cause == "timeout"
        await store.check_writable()
    finally:
        await store.close()


class StuckDatabase:
    """A database whose writes hang until released, then fail: what a held lock looks like."""

    def __init__(self) -> None:
        self.config = parse_store_url("sqlite:///stuck.db")
        self.writes = 0
        self.release = asyncio.Event()

    async def run(self, work: Any) -> None:
        self.writes += 1
        await self.release.wait()
        raise StoreUnavailable("database is locked", "lock held")


async def test_a_write_past_its_deadline_is_waited_for_again_not_repeated() -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    database = StuckDatabase()
    probe = WriteProbe(database, timeout=0.05)  # type: ignore[arg-type]
    for _ in range(5):  # a load balancer polling while the lock is held
        with pytest.raises(StoreUnavailable) as failure:
            await probe.check()
        assert failure.value.cause == "timeout"
    assert database.writes == 1  # not five writes queued ahead of the deliveries
    database.release.set()
    with pytest.raises(StoreUnavailable) as failure:
        await probe.check()  # the same write ends; the next check starts a new one
    assert failure.value.cause in ("lock held", "timeout")
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    assert unhandled == []  # no "Task exception was never retrieved"
