"""One event, one handling, whatever its bytes and its source: a rebuilt event after the real
delivery, or a late real delivery after its rebuild, is answered like a duplicate; handlers see
where an event came from."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from omnihook.contracts import EventType, event_identity, parse_event, samples
from omnihook.contracts.cli import root
from omnihook.receiver import TOKEN_HEADER, HandlerContext, Router, Worker, create_app
from omnihook.receiver.delivery import stored_delivery
from omnihook.store import Store

TOKEN = "identity-token"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


def seen_router(seen: list[tuple[str, str]]) -> Router:
    router = Router()

    @router.on(EventType.CHAT_CLOSE, EventType.MESSAGE)
    async def record(event: Any, context: HandlerContext) -> None:
        seen.append((event.type, context.source))

    return router


def rebuilt(document: dict[str, Any]) -> bytes:
    """The same event as reconcile would rebuild it: other crmData, other key order."""
    again = {key: document[key] for key in reversed(document)}
    again["crmData"] = '{"rebuilt": true}'
    return json.dumps(again).encode()


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/rocketchat", content=body, headers={TOKEN_HEADER: TOKEN})


@pytest.mark.parametrize("name", ["chat-close", "visitor-message"])
async def test_whichever_comes_first_is_handled_once(store: Store, name: str) -> None:
    seen: list[tuple[str, str]] = []
    router = seen_router(seen)
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    worker = Worker(store, router)
    real = json.dumps(samples.sample(name)).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        # A rebuild first (the webhook was dropped), then the real delivery arrives late.
        event = parse_event(rebuilt(samples.sample(name)))
        first = await store.events.accept(
            stored_delivery(event, rebuilt(samples.sample(name)), source="reconcile")
        )
        late = await post(c, real)
        assert late.status_code == 200
        assert late.text == first.answer  # answered like a duplicate of the rebuild
    await worker.drain()
    assert seen == [(parse_event(real).type, "reconcile")]  # handled once, as rebuilt
    assert event_identity(parse_event(real)) == event_identity(event)


async def test_a_rebuild_after_the_real_delivery_is_not_handled_again(store: Store) -> None:
    seen: list[tuple[str, str]] = []
    router = seen_router(seen)
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    real = json.dumps(samples.sample("chat-close")).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await post(c, real)).status_code == 200
    body = rebuilt(samples.sample("chat-close"))
    again = await store.events.accept(stored_delivery(parse_event(body), body, source="reconcile"))
    assert again.duplicate
    await Worker(store, router).drain()
    assert seen == [("LivechatSession", "webhook")]


def test_events_list_marks_and_filters_rebuilt_events(tmp_path: Path) -> None:
    import asyncio

    url = f"sqlite:///{tmp_path / 'omnihook.db'}"

    async def fill() -> None:
        async with Store.open(url) as store:
            for name, source in (("chat-start", "webhook"), ("chat-close", "reconcile")):
                body = json.dumps(samples.sample(name)).encode()
                await store.events.accept(stored_delivery(parse_event(body), body, source=source))  # type: ignore[arg-type]

    asyncio.run(fill())
    runner = CliRunner()
    listed = runner.invoke(root, ["events", "list", "--store", url], env={"COLUMNS": "250"})
    assert "LivechatSession (rebuilt)" in listed.output
    assert "LivechatSessionStart (rebuilt)" not in listed.output
    only = runner.invoke(
        root, ["events", "list", "--source", "reconcile", "--json", "--store", url]
    )
    [line] = only.output.splitlines()
    assert json.loads(line)["source"] == "reconcile"
    assert json.loads(line)["identity"].startswith("close:")


def taken(served_at: str, agent: str | None = None) -> bytes:
    document = samples.sample("chat-taken")
    document["servedBy"] = {**document["servedBy"], "ts": served_at}
    if agent is not None:
        document["servedBy"]["_id"] = agent
    return json.dumps(document).encode()


async def test_a_late_take_after_its_rebuild_a_few_ms_off_is_a_duplicate(store: Store) -> None:
    """An assignment before the room's latest is rebuilt with the time of the system message
    written after it: the real Chat Taken arriving later, milliseconds apart, is the same event;
    another take (seconds later, or by another agent) is not."""
    seen: list[tuple[str, str]] = []
    router = Router()

    @router.on(EventType.CHAT_TAKEN)
    async def record(event: Any, context: HandlerContext) -> None:
        seen.append((event.served_by.ts.isoformat(), context.source))

    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    rebuild = taken("2025-03-14T09:00:00.023Z")
    first = await store.events.accept(
        stored_delivery(parse_event(rebuild), rebuild, source="reconcile")
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        late = await post(c, taken("2025-03-14T09:00:00.020Z"))
        assert (late.status_code, late.text) == (200, first.answer)
        later = await post(c, taken("2025-03-14T09:00:30.020Z"))  # taken again, 30 s on
        other = await post(c, taken("2025-03-14T09:00:00.021Z", agent="another-agent"))
    assert later.status_code == other.status_code == 200
    await Worker(store, router).drain()
    assert sorted(seen) == [
        ("2025-03-14T09:00:00.021000+00:00", "webhook"),  # another agent's
        ("2025-03-14T09:00:00.023000+00:00", "reconcile"),  # the late real one: not again
        ("2025-03-14T09:00:30.020000+00:00", "webhook"),
    ]


@pytest.mark.parametrize("room", ["\x00", "R\ud800", "R" * 300])
async def test_an_unstorable_or_long_room_id_still_finds_its_duplicate(
    store: Store, room: str
) -> None:
    """A NUL or lone surrogate is stored as U+FFFD and a long id bounded: the same event sent
    again (other bytes: another crmData) is matched by the identity as stored, not a 503."""
    app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
    document = samples.sample("agent-message")
    document["_id"] = room
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        for crm_data in ("{}", '{"n": 2}'):
            document["crmData"] = crm_data
            body = json.dumps(document).encode()
            answers.append(await post(c, body))
    assert [a.status_code for a in answers] == [200, 200]
    assert len(await store.events.find()) == 1
