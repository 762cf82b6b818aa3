"""The SQL CRM's records on SQLite and on the real PostgreSQL: a conversation's messages, written
many to a statement, keep their rules (each once, an edit never undone)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from omnihook.store import Store
from omnihook.store.sqlcrm import ConversationRecord, MessageRecord


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def message(n: int, text: str = "", edited: bool = False) -> MessageRecord:
    return MessageRecord(f"m{n:05d}", 1000.0 + n, "Jane", "visitor", text or f"text {n}", edited)


async def texts(store: Store) -> list[tuple[str, str, bool]]:
    found = await store.sql_crm.conversation("R1")
    assert found is not None
    return [(m.message_key, m.text, m.edited) for m in found[2]]


async def test_a_long_history_is_kept_whole_and_once(store: Store) -> None:
    room = ConversationRecord("R1", status="closed", last_event="LivechatSession")
    history = [message(n) for n in range(2500)]  # three statements' worth
    await store.sql_crm.record(None, room, history, now=1.0)
    await store.sql_crm.record(None, room, history, now=2.0)  # delivered again
    assert await texts(store) == [(f"m{n:05d}", f"text {n}", False) for n in range(2500)]


async def test_an_edit_is_never_undone_by_the_message_as_first_written(store: Store) -> None:
    room = ConversationRecord("R1", last_event="Message")
    await store.sql_crm.record(None, room, [message(1, "fixed", edited=True)], now=1.0)
    # A late close whose history has the first version, then one with the edit again.
    await store.sql_crm.record(None, room, [message(1, "typo"), message(2)], now=2.0)
    assert await texts(store) == [("m00001", "fixed", True), ("m00002", "text 2", False)]


async def test_a_history_that_names_a_message_twice_takes_them_in_order(store: Store) -> None:
    room = ConversationRecord("R1", last_event="LivechatSession")
    twice = [message(1, "typo"), message(1, "fixed", edited=True), message(1, "typo")]
    await store.sql_crm.record(None, room, twice, now=1.0)
    assert await texts(store) == [("m00001", "fixed", True)]
