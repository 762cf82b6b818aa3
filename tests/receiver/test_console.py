"""The web console over HTTP: sign-in, what needs a session, CSRF, escaping, the throttle, and
the actions (replay, bulk replay with its confirmation, outbox retry and purge) with their audit
lines. The browser tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.receiver import HandlerContext, HandlingPolicy, Router, Worker, create_app
from omnihook.receiver.console import ConsoleAuth, LoginThrottle, create_console, read_password
from omnihook.store import Store

from ..conftest import UvicornThread, free_port
from ..processes import OMNIHOOK, OmnihookProcess, wait_for

PASSWORD = "correct horse battery"
TOKEN = "console-webhook-token"


class Console:
    def __init__(self, store: Store, auth: ConsoleAuth) -> None:
        self.store = store
        self.auth = auth
        self.router = Router()
        self.failing = True

        @self.router.on("LivechatSession")
        async def archive(event: Any, context: HandlerContext) -> None:
            if self.failing:
                raise RuntimeError("the archive is down")

        self.hook = create_app(self.router, tokens=[TOKEN], store=store, run_worker=False)
        self.worker = Worker(store, self.router, policy=HandlingPolicy(attempts=1))
        self.app = Starlette(routes=[Mount("/console", create_console(store, auth))])

    def client(self, scheme: str = "http") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url=f"{scheme}://console.test")  # fmt: skip

    async def deliver(self, *documents: dict[str, Any]) -> None:
        transport = httpx.ASGITransport(app=self.hook)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            for document in documents:
                answer = await client.post(
                    "/rocketchat", json=document, headers={TOKEN_HEADER: TOKEN}
                )
                assert answer.status_code == 200
        await self.worker.drain()


async def sign_in(client: httpx.AsyncClient, name: str = "jane") -> str:
    answer = await client.post("/console/login", data={"name": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/events")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async with Store.open(f"sqlite:///{tmp_path / 'omnihook.db'}") as store:
        yield Console(store, ConsoleAuth(PASSWORD))


async def test_nothing_without_a_session(console: Console) -> None:
    await console.deliver(samples.sample("chat-close"))
    async with console.client() as client:
        for path in ("/", "/chats", "/chats/hX4Lq2rNwPZ8Kc7Ry", "/events", "/events/1", "/outbox",
                     "/live", "/events/replay-dead"):  # fmt: skip
            answer = await client.get(f"/console{path}")
            assert (answer.status_code, answer.headers["location"]) == (303, "/console/login")
        stream = await client.get("/console/live/stream", headers={"Accept": "text/event-stream"})
        assert stream.status_code == 401
        replay = await client.post("/console/events/1/replay", data={"csrf": "x"})
        assert replay.status_code == 303
        assert (await console.store.events.get(1)).status == "dead"  # type: ignore[union-attr]
        wrong = await client.post("/console/login", data={"name": "x", "password": TOKEN})
        assert wrong.status_code == 401  # the webhook's token is not the console's password


async def test_the_session_cookie_and_signing_out(console: Console) -> None:
    async with console.client("https") as client:
        answer = await client.post("/console/login", data={"name": "jane", "password": PASSWORD})
        cookie = answer.headers["set-cookie"]
        for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/console/"):
            assert flag in cookie
        csrf = await sign_in(client)
        assert (await client.get("/console/")).status_code == 200
        await client.post("/console/logout", data={"csrf": csrf})
        assert (await client.get("/console/")).status_code == 303
    async with console.client("http") as plain:
        answer = await plain.post("/console/login", data={"name": "jane", "password": PASSWORD})
        assert "Secure" not in answer.headers["set-cookie"]


async def test_an_action_without_its_csrf_token_is_refused(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    await console.deliver(samples.sample("chat-close"))  # dead: the archive is down
    async with console.client() as client:
        csrf = await sign_in(client)
        for data in ({}, {"csrf": "forged"}):
            refused = await client.post("/console/events/1/replay", data=data)
            assert refused.status_code == 403
            assert "CSRF" in refused.text
        assert (await console.store.events.get(1)).status == "dead"  # type: ignore[union-attr]
        caplog.set_level(logging.INFO, logger="omnihook.console")
        done = await client.post("/console/events/1/replay", data={"csrf": csrf})
        assert done.status_code == 303
    assert (await console.store.events.get(1)).status == "pending"  # type: ignore[union-attr]
    assert "console: jane replayed event 1" in caplog.text


async def test_a_visitors_markup_shows_as_text(console: Console) -> None:
    document = samples.sample("visitor-message")
    document["messages"][0]["msg"] = '<script>alert("x")</script><b>bold</b>'
    document["visitor"]["name"] = '<img src=x onerror="alert(1)">'
    await console.deliver(document)
    async with console.client() as client:
        await sign_in(client)
        for path in ("/console/events", "/console/events/1", f"/console/chats/{document['_id']}"):
            page = await client.get(path)
            assert page.status_code == 200
            assert "<script>alert" not in page.text
            assert "<img src=x" not in page.text
            assert "&lt;script&gt;" in page.text or "\\u003cscript" in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_failed_sign_ins_are_slowed_down() -> None:
    now = [1000.0]
    throttle = LoginThrottle(free=3, clock=lambda: now[0])
    auth = ConsoleAuth(PASSWORD, throttle=throttle)
    app = Starlette(routes=[Mount("/console", create_console(Store("sqlite:///:memory:"), auth))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        for _ in range(3):
            assert (
                await c.post("/console/login", data={"name": "m", "password": "guess"})
            ).status_code == 401
        slowed = await c.post("/console/login", data={"name": "m", "password": "guess"})
        assert slowed.status_code == 429  # three free failures, then a wait of 1 s
        assert slowed.headers["retry-after"] == "2"
        assert "Too many failed attempts" in slowed.text
        right = await c.post("/console/login", data={"name": "m", "password": PASSWORD})
        assert right.status_code == 429  # even the right password waits
        now[0] += 1.5
        assert (
            await c.post("/console/login", data={"name": "m", "password": PASSWORD})
        ).status_code == 303
    assert throttle.wait("127.0.0.1") == 0


async def test_bulk_replay_says_how_many_and_checks_the_count(console: Console) -> None:
    close = samples.sample("chat-close")
    other = json.loads(json.dumps(close).replace("hX4Lq2rNwPZ8Kc7Ry", "R2"))
    await console.deliver(close, other)
    async with console.client() as client:
        csrf = await sign_in(client)
        confirm = await client.get("/console/events/replay-dead")
        assert "Replay 2 dead event(s)" in confirm.text
        stale = await client.post("/console/events/replay-dead", data={"csrf": csrf, "count": "1"})
        assert stale.status_code == 409
        console.failing = False
        done = await client.post("/console/events/replay-dead", data={"csrf": csrf, "count": "2"})
        assert done.status_code == 303
    await console.worker.drain()
    assert {e.status for e in await console.store.events.find()} == {"done"}


async def test_every_page_renders_what_the_store_holds(console: Console) -> None:
    console.failing = False
    await console.deliver(
        *(samples.sample(n) for n in ("chat-start", "visitor-message", "chat-close"))
    )
    async with console.client() as client:
        await sign_in(client)
        overview = await client.get("/console/")
        assert "All well." in overview.text
        assert "Events received, last 24 hours" in overview.text
        chats = await client.get("/console/chats")
        assert "hX4Lq2rNwPZ8Kc7Ry" in chats.text
        assert "Jane Doe" in chats.text
        chat = await client.get("/console/chats/hX4Lq2rNwPZ8Kc7Ry")
        assert chat.text.count('class="status-done"') == 3
        assert "Hi, my order A-10042 has not arrived yet." in chat.text  # the transcript
        events = await client.get("/console/events", params={"type": "LivechatSession"})
        assert events.text.count("<tr class=") == 1
        assert (await client.get("/console/events", params={"status": "nope"})).status_code == 400
        assert (await client.get("/console/events/999")).status_code == 404
        outbox = await client.get("/console/outbox")
        assert outbox.status_code == 200
        assert (await client.get("/console/outbox/1")).status_code == 404


def test_the_password_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNIHOOK_CONSOLE_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="the console needs a password"):
        read_password()
    monkeypatch.setenv("OMNIHOOK_CONSOLE_PASSWORD", "short")
    with pytest.raises(ValueError, match="shorter than 12"):
        read_password()
    monkeypatch.setenv("OMNIHOOK_CONSOLE_PASSWORD", PASSWORD)
    assert read_password() == PASSWORD
    path = tmp_path / "console.password"
    path.write_text("from a file, long enough\n")
    assert read_password(path) == "from a file, long enough"
    with pytest.raises(ValueError, match="cannot read the console password"):
        read_password(tmp_path / "missing")


async def test_live_streams_new_events_as_they_arrive(console: Console, tmp_path: Path) -> None:
    """The live view's stream, from a real server: an event stored after it opened arrives."""
    served = Starlette(routes=[Mount("/console", create_console(
        Store(f"sqlite:///{tmp_path / 'omnihook.db'}"), console.auth, live_every=0.05,
        stream_seconds=1.0))])  # fmt: skip
    with UvicornThread(served) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await sign_in(client)
            async with client.stream("GET", "/console/live/stream") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await anext(lines) == "retry: 1000"
                console.failing = False
                await console.deliver(samples.sample("chat-close"))
                received = [line async for line in _until(lines, "data: ")]
            # A stream ends by itself (a shutting-down server never waits on an open page); the
            # browser reconnects with Last-Event-ID and misses nothing.
            started = time.monotonic()
            async with client.stream("GET", "/console/live/stream") as ended:
                assert [line async for line in ended.aiter_lines()][:2] == ["retry: 1000", "id: 1"]
            assert time.monotonic() - started < 5
            await console.deliver(samples.sample("visitor-message"))
            async with client.stream("GET", "/console/live/stream",
                                     headers={"Last-Event-ID": "1"}) as resumed:  # fmt: skip
                caught_up = [line async for line in _until(resumed.aiter_lines(), "data: ")]
    data = json.loads(received[-1].removeprefix("data: "))
    assert (data["id"], data["type"]) == (1, "LivechatSession")
    # The stream may see the event stored and not yet handled, or handled: either is live.
    assert data["status"] in ("pending", "processing", "done")
    assert "event: event" in received
    assert json.loads(caught_up[-1].removeprefix("data: "))["id"] == 2


async def _until(lines: AsyncIterator[str], prefix: str) -> AsyncIterator[str]:
    async for line in lines:
        yield line
        if line.startswith(prefix):
            return


def test_the_commands_serve_the_console_and_refuse_to_without_a_password(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    no_password = subprocess.run(
        [OMNIHOOK, "serve", "--console", "--store", store_url, "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "OMNIHOOK_TOKEN": "t", "OMNIHOOK_CONSOLE_PASSWORD": ""},
    )  # fmt: skip
    assert no_password.returncode == 2
    assert "the console needs a password: set $OMNIHOOK_CONSOLE_PASSWORD" in no_password.stderr
    same = subprocess.run(
        [OMNIHOOK, "serve", "--console", "--store", store_url, "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "OMNIHOOK_TOKEN": PASSWORD, "OMNIHOOK_CONSOLE_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert same.returncode == 2
    assert "the console's password is a webhook token" in same.stderr
    port = free_port()
    console = OmnihookProcess(["console", "--store", store_url, "--port", str(port)], tmp_path,
                              {"OMNIHOOK_CONSOLE_PASSWORD": PASSWORD}).start()  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/console/login"), 30, "the console")
        with httpx.Client(base_url=url) as client:
            assert client.get("/").headers["location"] == "/console/"
            signed = client.post("/console/login", data={"name": "ops", "password": PASSWORD})
            assert signed.status_code == 303
            assert client.get("/console/events").status_code == 200
    finally:
        console.stop()
    assert PASSWORD not in console.output()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def test_an_outbox_delivery_its_attempts_and_retry(console: Console, httpserver: Any) -> None:
    from omnihook.sender import RetryPolicy, Sender

    httpserver.expect_request("/hook").respond_with_data("down for maintenance", status=503)
    async with Sender(httpserver.url_for("/hook"), token="t", policy=RetryPolicy(attempts=2, delay=0.01),
                      outbox=console.store) as sender:  # fmt: skip
        await sender.enqueue(samples.sample("chat-start"))
        await sender.drain()
    async with console.client() as client:
        csrf = await sign_in(client)
        listed = await client.get("/console/outbox", params={"status": "dead"})
        assert 'href="/console/outbox/1"' in listed.text
        page = await client.get("/console/outbox/1")
        assert page.text.count("<strong>503</strong>") == 2  # both attempts, with their answer
        assert "down for maintenance" in page.text
        retried = await client.post("/console/outbox/1/retry", data={"csrf": csrf})
        assert retried.status_code == 303
    assert (await console.store.outbox.get(1)).status == "pending"  # type: ignore[union-attr]


async def test_a_chat_links_to_its_crm_records(tmp_path: Path) -> None:
    urls = {"hubspot": {"contactId": "https://app.hubspot.com/contacts/42/record/0-1/{id}"}}
    async with Store.open(f"sqlite:///{tmp_path / 'omnihook.db'}") as store:
        await store.crm_links.update("hubspot", "R1", {"contactId": "901", "noteId": "7"}, 1.0)
        await store.crm_links.update("zoho", "R1", {"leadId": '"><script>x</script>'}, 1.0)
        app = Starlette(routes=[Mount("/console", create_console(
            store, ConsoleAuth(PASSWORD), record_urls=urls))])  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://c"
        ) as c:
            await sign_in(c)
            page = (await c.get("/console/chats/R1")).text
    assert 'href="https://app.hubspot.com/contacts/42/record/0-1/901"' in page
    assert "noteId: <code>7</code>" in page  # no URL given for it: the id alone
    assert "<script>x" not in page


def test_record_urls_must_be_web_addresses_with_the_id() -> None:
    from omnihook.receiver.bridge import BridgeConfigError, parse_bridge_config, record_urls

    config = parse_bridge_config(
        {"crm": [{"kind": "sql", "record_urls": {"contact": "https://crm.example/{id}"}}]}
    )
    assert record_urls(config) == {"sql": {"contact": "https://crm.example/{id}"}}
    for bad in ("javascript:alert({id})", "https://crm.example/contacts"):
        with pytest.raises(BridgeConfigError, match="a record URL is an http"):
            parse_bridge_config({"crm": [{"kind": "sql", "record_urls": {"contact": bad}}]})


async def test_a_store_that_cannot_be_read_is_a_page_not_a_crash(tmp_path: Path) -> None:
    broken = Store(f"sqlite:///{tmp_path}")  # a directory: nothing can open it
    app = Starlette(routes=[Mount("/console", create_console(broken, ConsoleAuth(PASSWORD)))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        await c.post("/console/login", data={"name": "ops", "password": PASSWORD})
        page = await c.get("/console/events")
    assert page.status_code == 503
    assert "The store cannot be read right now" in page.text
