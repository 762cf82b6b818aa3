"""``omnihook events``: list, show and replay stored events, on both stores."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from omnihook.contracts import samples
from omnihook.contracts.cli import root
from omnihook.store import Finish, NewEvent, Store


def run(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["events", *args, "--store", store_url], env={"COLUMNS": "200"})


async def seed(store_url: str) -> list[int]:
    """Three events: one done, one dead after two attempts, one pending."""
    async with Store.open(store_url) as store:
        ids = []
        for n, name in enumerate(("chat-start", "chat-taken", "offline-message")):
            body = json.dumps(samples.sample(name)).encode()
            document = samples.sample(name)
            new = NewEvent(
                hashlib.sha256(body).hexdigest(),
                document.get("_id"),
                document["type"],
                body,
                1_700_000_000.0 + n,
            )
            ids.append((await store.events.accept(new)).event_id)
        [start] = await store.events.claim("w1", 1, 30, now=1_700_000_100)
        await store.events.finish(
            start, "w1", Finish("done", 1_700_000_100, 1_700_000_100.2, handlers_done=["log"])
        )
        [taken] = await store.events.claim("w1", 1, 30, now=1_700_000_101)
        await store.events.finish(taken, "w1", Finish("failed", 1_700_000_101, 1_700_000_101.5,
                                  error="CRM 503: try later", next_attempt_at=1_700_000_102))  # fmt: skip
        [taken] = await store.events.claim("w2", 1, 30, now=1_700_000_103)
        await store.events.finish(taken, "w2", Finish("dead", 1_700_000_103, 1_700_000_103.1,
                                  error="CRM 400: invalid email"))  # fmt: skip
        return ids


def test_list_shows_a_readable_table_and_filters(store_url: str) -> None:
    start, taken, offline = asyncio.run(seed(store_url))
    everything = run(store_url, "list")
    assert everything.exit_code == 0, everything.output
    lines = everything.stdout.splitlines()
    assert lines[0].split("┃")[0].strip() == "id"
    assert [line.split("│")[0].strip() for line in lines[2:5]] == [
        str(offline),
        str(taken),
        str(start),
    ]
    assert "CRM 400: invalid email" in everything.stdout
    assert "pending: 1, processing: 0, failed: 0, dead: 1, done: 1" in everything.stdout
    dead = run(store_url, "list", "--status", "dead", "--json")
    assert [json.loads(line)["id"] for line in dead.stdout.splitlines()] == [taken]
    in_room = run(store_url, "list", "--room", "hX4Lq2rNwPZ8Kc7Ry", "--json")
    assert len(in_room.stdout.splitlines()) == 2
    assert "no events with status failed" in run(store_url, "list", "--status", "failed").stdout


def test_show_prints_state_payload_and_attempts(store_url: str) -> None:
    _, taken, _ = asyncio.run(seed(store_url))
    result = run(store_url, "show", str(taken))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "LivechatSessionTaken" in out
    assert '"servedBy": {' in out  # the payload, pretty-printed
    assert "CRM 503: try later" in out
    assert "CRM 400: invalid email" in out
    assert " w1 " in out
    assert " w2 " in out
    missing = run(store_url, "show", "999")
    assert missing.exit_code == 1
    assert "no event 999" in missing.stderr


def test_replay_dead_and_by_id(store_url: str) -> None:
    start, taken, offline = asyncio.run(seed(store_url))
    replayed = run(store_url, "replay", "--dead")
    assert replayed.exit_code == 0
    assert replayed.stdout == f"replaying 1 event(s): {taken}\n"
    skipped = run(store_url, "replay", str(start), str(offline))
    assert skipped.exit_code == 1
    assert f"event {start} not replayed: done" in skipped.stderr
    assert f"event {offline} not replayed: already pending" in skipped.stderr
    forced = run(store_url, "replay", str(start), "--all-handlers")
    assert forced.stdout == f"replaying 1 event(s): {start}\n"


@pytest.mark.parametrize("args", [(), ("1", "--dead")])
def test_replay_needs_ids_or_dead(store_url: str, args: tuple[str, ...]) -> None:
    result = run(store_url, "replay", *args)
    assert result.exit_code == 2
    assert "give event ids or --dead" in result.stderr


def test_a_bad_store_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(root, ["events", "list", "--store", "mysql://x/y"])
    assert result.exit_code == 2
    assert "unsupported store URL" in result.stderr


def navigation_chat() -> dict[str, Any]:
    """A chat start whose messages include a navigation message, as Rocket.Chat writes it."""
    document = samples.sample("chat-start")
    token = document["visitor"]["token"]
    document["messages"].append({
        "u": {"_id": "rocket.cat", "username": "rocket.cat"}, "_id": "nav1",
        "username": "rocket.cat", "msg": "https://shop.example/pricing", "ts": "2025-03-14T09:30:05.000Z",
        "rid": document["_id"], "_updatedAt": "2025-03-14T09:30:05.000Z",
        "navigation": {"page": {"change": "url", "title": "Pricing",
                                "location": {"href": "https://shop.example/pricing"}, "token": token},
                       "token": token},
    })  # fmt: skip
    return document


async def accept(store_url: str, document: dict[str, Any]) -> int:
    body = json.dumps(document).encode()
    async with Store.open(store_url) as store:
        new = NewEvent(
            hashlib.sha256(body).hexdigest(), document["_id"], document["type"], body, 1.0
        )
        return (await store.events.accept(new)).event_id


def test_show_masks_the_visitor_token_unless_asked(store_url: str) -> None:
    document = navigation_chat()
    token = document["visitor"]["token"]
    event_id = asyncio.run(accept(store_url, document))
    masked = run(store_url, "show", str(event_id))
    assert masked.exit_code == 0, masked.output
    assert token not in masked.output
    assert masked.stdout.count('"token": "***"') == 3  # visitor, navigation, navigation.page
    assert "(the visitor's Livechat token is masked as ***; --show-secrets shows it)" in (
        masked.stdout
    )
    assert "Hi, my order A-10042 has not arrived yet." in masked.stdout  # the rest is intact
    shown = run(store_url, "show", str(event_id), "--show-secrets")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count(f'"token": "{token}"') == 3
    assert "***" not in shown.stdout
    assert "masked" not in shown.stdout


def test_show_without_a_visitor_token_mentions_no_masking(store_url: str) -> None:
    document = samples.sample("send-test")
    document["visitor"].pop("token", None)
    event_id = asyncio.run(accept(store_url, document))
    result = run(store_url, "show", str(event_id))
    assert result.exit_code == 0, result.output
    assert "masked" not in result.stdout


@pytest.mark.parametrize(
    "args", [("list",), ("list", "--json"), ("show", "1"), ("replay", "1"), ("replay", "--dead")]
)
def test_read_commands_without_a_store_say_so_and_create_none(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "nothing-here.db"
    result = run(f"sqlite:///{missing}", *args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no store at {missing}: start `omnihook serve` first or pass --store ($OMNIHOOK_STORE)\n"
    )
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []
