"""``omnihook status``: what needs attention, from the store, and its exit code."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from click.testing import CliRunner

from omnihook.contracts import parse_event, samples
from omnihook.contracts.cli import root
from omnihook.receiver.delivery import stored_delivery
from omnihook.receiver.ops import BridgeStatus, StatusLimits, read_status
from omnihook.store import Finish, Store


def status(store_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(root, ["status", "--store", store_url, *args])
    return result.exit_code, result.output


def test_a_dead_letter_and_a_failed_reconcile_need_attention(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'omnihook.db'}"

    async def fill() -> None:
        async with Store.open(url) as store:
            body = json.dumps(samples.sample("chat-close")).encode()
            await store.events.accept(stored_delivery(parse_event(body), body))
            [claimed] = await store.events.claim("w", 1, 30, time.time())
            now = time.time()
            await store.events.finish(claimed, "w", Finish("dead", now, now, error="CRM said no"))
            await store.state.put("reconcile", {"outcome": "failed", "error": "Rocket.Chat: 503"},
                                  now)  # fmt: skip

    asyncio.run(fill())
    code, output = status(url)
    assert code == 1
    assert "needs attention: 1 dead event(s)" in output
    assert "needs attention: the last reconcile was failed: Rocket.Chat: 503" in output
    code, output = status(url, "--json")
    found = json.loads(output)
    assert (code, found["ok"], found["events"]["dead"]) == (1, False, 1)
    assert found["reconcile"]["outcome"] == "failed"


def test_a_missing_store_and_an_unwritable_one_are_said_in_one_line(tmp_path: Path) -> None:
    code, output = status(f"sqlite:///{tmp_path / 'nothing-here.db'}")
    assert code == 1
    assert "no store at" in output
    broken = asyncio.run(read_status(Store(f"sqlite:///{tmp_path}"), time.time()))
    assert broken.store_problem is not None
    assert broken.problems() == [f"store: {broken.store_problem}"]
    assert "\n" not in broken.problems()[0]


def test_a_reconcile_expected_but_never_recorded_needs_attention() -> None:
    quiet = BridgeStatus(now=1000.0, store_problem=None)
    assert quiet.problems() == []
    assert quiet.problems(StatusLimits(max_reconcile_age=900))[0].startswith(
        "no reconcile run within 900 s"
    )
