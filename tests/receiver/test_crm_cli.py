"""``omnihook contacts`` and ``omnihook conversations``: the SQL CRM from the command line, on both
stores, and what they say where no store exists."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnihook.contracts.cli import root
from omnihook.store import ContactRecord, ConversationRecord, MessageRecord, Store


def run(*args: str) -> Result:
    return CliRunner().invoke(root, list(args), env={"COLUMNS": "200"})


async def seed(store_url: str) -> None:
    """Jane's closed chat (two messages), Tom's open chat (one), an offline message (no contact
    row for the room's visitor id, one message), updated in that order."""
    async with Store.open(store_url) as store:
        crm = store.sql_crm
        jane = ContactRecord("V-jane", name="Jane Doe", email="jane@example.com")
        await crm.record(jane, ConversationRecord("R-jane", status="open", agent="emma.brown",
                         tags=["sales"], started_at=1_700_000_000, last_event="LivechatSessionStart"),
                         [MessageRecord("m1", 1_700_000_001, "guest-1", "visitor", "Hi")], now=1_700_000_010)  # fmt: skip
        tom = ContactRecord("V-tom", name="Tom Lee")
        await crm.record(tom, ConversationRecord("R-tom", status="open", started_at=1_700_000_100,
                         last_event="LivechatSessionStart"),
                         [MessageRecord("m1", 1_700_000_101, "guest-2", "visitor", "Hello?")], now=1_700_000_110)  # fmt: skip
        await crm.record(None, ConversationRecord("offline:x", status="offline", started_at=1_700_000_200,
                         last_event="LivechatOfflineMessage"),
                         [MessageRecord("m1", 1_700_000_200, "Sam", "visitor", "Call me")], now=1_700_000_210)  # fmt: skip
        await crm.record(jane, ConversationRecord("R-jane", status="closed", closer="visitor",
                         closed_at=1_700_000_300, last_event="LivechatSession"),
                         [MessageRecord("m2", 1_700_000_250, "emma.brown", "agent", "Sorted!")], now=1_700_000_300)  # fmt: skip


def test_conversations_list_newest_first_with_contact_and_count(store_url: str) -> None:
    asyncio.run(seed(store_url))
    result = run("conversations", "list", "--store", store_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [cell.strip() for cell in lines[0].split("┃")] == [
        "room", "status", "contact", "agent", "messages", "started (UTC)", "updated (UTC)",
        "last event",
    ]  # fmt: skip
    rows = [[cell.strip() for cell in line.split("│")] for line in lines[2:]]
    assert rows == [
        ["R-jane", "closed, closed by visitor", "Jane Doe <jane@example.com>", "emma.brown", "2",
         "2023-11-14 22:13:20", "2023-11-14 22:18:20", "LivechatSession"],
        ["offline:x", "offline", "-", "-", "1", "2023-11-14 22:16:40", "2023-11-14 22:16:50",
         "LivechatOfflineMessage"],
        ["R-tom", "open", "Tom Lee", "-", "1", "2023-11-14 22:15:00", "2023-11-14 22:15:10",
         "LivechatSessionStart"],
    ]  # fmt: skip


def test_conversations_list_filters_and_json(store_url: str) -> None:
    asyncio.run(seed(store_url))

    def listed(*args: str) -> list[dict[str, object]]:
        result = run("conversations", "list", "--json", *args, "--store", store_url)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    [jane] = listed("--status", "closed")
    assert jane == {
        "room_id": "R-jane", "status": "closed", "contact_id": jane["contact_id"],
        "contact_name": "Jane Doe", "contact_email": "jane@example.com", "agent": "emma.brown",
        "department_id": None, "tags": ["sales"], "custom_fields": {}, "messages": 2,
        "started_at": "2023-11-14 22:13:20", "closed_at": "2023-11-14 22:18:20", "closer": "visitor",
        "last_event": "LivechatSession", "updated_at": "2023-11-14 22:18:20",
    }  # fmt: skip
    assert isinstance(jane["contact_id"], int)
    assert [c["room_id"] for c in listed("--search", "Tom")] == ["R-tom"]
    assert [c["room_id"] for c in listed("--search", "offline")] == ["offline:x"]
    assert [c["room_id"] for c in listed("--search", "example.com")] == ["R-jane"]
    assert [c["room_id"] for c in listed("--limit", "2")] == ["R-jane", "offline:x"]
    assert listed("--status", "queued") == []
    empty = run("conversations", "list", "--status", "queued", "--store", store_url)
    assert empty.exit_code == 0
    assert empty.stdout == "no conversations yet with status queued\n"


def test_conversations_list_on_an_empty_store(store_url: str) -> None:
    async def create() -> None:
        async with Store.open(store_url):
            pass

    asyncio.run(create())
    result = run("conversations", "list", "--store", store_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "no conversations yet\n"


@pytest.mark.parametrize(
    "args",
    [
        ("contacts", "list"),
        ("contacts", "list", "--json"),
        ("conversations", "list"),
        ("conversations", "show", "R-jane"),
    ],
)
def test_without_a_store_they_say_so_and_create_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMNIHOOK_STORE", raising=False)
    result = run(*args)  # the default store: ./omnihook.db
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no store at ./omnihook.db: start `omnihook serve` first or pass --store "
        "($OMNIHOOK_STORE)\n"
    )
    assert list(tmp_path.iterdir()) == []
