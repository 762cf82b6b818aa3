"""``omnihook outbox``: list, show, retry and purge deliveries, on both stores."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnihook.contracts import samples
from omnihook.contracts.cli import root
from omnihook.store import OutboxAttempt, OutboxItem, Store

URL = "http://crm.example/hook"


def run(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["outbox", *args, "--store", store_url], env={"COLUMNS": "220"})


async def seed(store_url: str) -> tuple[int, int, int]:
    """A delivered entry, a dead one (two attempts) and a pending one, an hour ago."""
    t = time.time() - 3600
    async with Store.open(store_url) as store:
        ids = []
        for name in ("chat-start", "chat-taken", "chat-close"):
            document = samples.sample(name)
            body = json.dumps(document).encode()
            ids.append(
                await store.outbox.put(OutboxItem(URL, body, f"R-{name}", document["type"], t))
            )
        for entry in await store.outbox.claim("d", 2, 30, now=t):
            if entry.id == ids[0]:
                await store.outbox.record(
                    entry, "d", OutboxAttempt(1, t, 0.01, 200, None), "done", t, '{"id":1}'
                )
            else:
                await store.outbox.record(
                    entry,
                    "d",
                    OutboxAttempt(1, t, 0.01, 503, "HTTP 503"),
                    "failed",
                    t + 20,
                    "busy",
                )
        [again] = await store.outbox.claim("d", 1, 30, now=t + 20)
        await store.outbox.record(
            again, "d", OutboxAttempt(2, t + 20, 0.02, 400, "HTTP 400: bad"), "dead", t + 20, "bad"
        )
        return ids[0], ids[1], ids[2]


def test_list_and_show(store_url: str) -> None:
    done, dead, pending = asyncio.run(seed(store_url))
    listed = run(store_url, "list")
    assert listed.exit_code == 0, listed.output
    rows = [line.split("│")[0].strip() for line in listed.stdout.splitlines()[2:5]]
    assert rows == [str(pending), str(dead), str(done)]
    assert "HTTP 400: bad" in listed.stdout
    assert "pending: 1, sending: 0, failed: 0, dead: 1, done: 1" in listed.stdout
    assert [
        json.loads(line)["id"]
        for line in run(store_url, "list", "--status", "dead", "--json").stdout.splitlines()
    ] == [dead]
    shown = run(store_url, "show", str(dead))
    assert shown.exit_code == 0
    assert "HTTP 503" in shown.stdout
    assert "HTTP 400: bad" in shown.stdout
    assert '"servedBy": {' in shown.stdout
    assert run(store_url, "show", "999").exit_code == 1


def test_retry_and_purge(store_url: str) -> None:
    done, dead, _ = asyncio.run(seed(store_url))
    retried = run(store_url, "retry", "--dead")
    assert retried.stdout == f"1 delivery(ies) due now: {dead}\n"
    refused = run(store_url, "retry", str(done))
    assert refused.exit_code == 1
    assert f"not retried (no such delivery, or not dead/failed): {done}" in refused.stderr
    assert run(store_url, "purge").exit_code == 2
    assert (
        run(store_url, "purge", "--done", "--older-than", "1d").stdout == "purged 0 delivery(ies)\n"
    )
    assert (
        run(store_url, "purge", "--done", "--dead", "--older-than", "30m").stdout
        == "purged 1 delivery(ies)\n"
    )
    bad_age = run(store_url, "purge", "--done", "--older-than", "soon")
    assert bad_age.exit_code == 2
    assert "expected a number with s, m, h or d" in bad_age.stderr


def test_show_masks_the_visitor_token_unless_asked(store_url: str) -> None:
    _, dead, _ = asyncio.run(seed(store_url))
    token = samples.sample("chat-taken")["visitor"]["token"]
    masked = run(store_url, "show", str(dead))
    assert masked.exit_code == 0, masked.output
    assert token not in masked.output
    assert '"token": "***"' in masked.stdout
    assert "--show-secrets shows it" in masked.stdout
    shown = run(store_url, "show", str(dead), "--show-secrets")
    assert f'"token": "{token}"' in shown.stdout


@pytest.mark.parametrize(
    "args", [("list",), ("show", "1"), ("retry", "--dead"), ("purge", "--done")]
)
def test_commands_without_a_store_say_so_and_create_none(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "outbox.db"
    result = run(f"sqlite:///{missing}", *args)
    assert result.exit_code == 1
    assert f"Error: no store at {missing}: start `omnihook serve` first" in result.stderr
    assert list(tmp_path.iterdir()) == []
