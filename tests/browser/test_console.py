"""The web console in Chromium, as an operator uses it: sign in, play a simulated chat, find it
under Chats and open its timeline, filter events, see a failing handler's event die, fix the
handler, replay it from the console and see it done, and watch a new event appear in Live
without a reload. A screenshot of each page is saved (see conftest)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.receiver import HandlerContext, HandlingPolicy, Router, create_app
from omnihook.receiver.console import ConsoleAuth, create_console
from omnihook.sender.simulate import Simulation, play
from omnihook.store import Store

from ..conftest import UvicornThread
from .conftest import run_async

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "console password for the browser"
TOKEN = "browser-webhook-token"


class Bridge:
    """``omnihook serve --console`` in a thread: the webhook, a worker, the console; a handler
    for Chat Close that fails while ``broken``."""

    def __init__(self, store_url: str) -> None:
        self.broken = False
        router = Router()

        @router.on("LivechatSession")
        async def archive(event: Any, context: HandlerContext) -> None:
            if self.broken:
                raise RuntimeError("the archive is down")

        store = Store(store_url)
        app = create_app(router, tokens=[TOKEN], store=store,
                         handling=HandlingPolicy(attempts=1, initial_delay=0.01))  # fmt: skip
        app.mount("/console", create_console(store, ConsoleAuth(PASSWORD), live_every=0.1))
        self.server = UvicornThread(app)
        self.url = self.server.url

    def post(self, document: dict[str, Any]) -> None:
        answer = httpx.post(f"{self.url}/rocketchat", content=json.dumps(document),
                            headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 200, answer.text


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    running = Bridge(f"sqlite:///{tmp_path / 'omnihook.db'}")
    running.server.server.config.lifespan = "on"  # the worker runs with the app
    with running.server:
        yield running


def sign_in(page: Page, bridge: Bridge) -> None:
    page.goto(f"{bridge.url}/console/")
    assert page.url.endswith("/console/login")
    page.get_by_label("Your name").fill("Jane Operator")
    page.get_by_label("Console password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_an_operator_finds_a_chat_fixes_a_failure_and_watches_live(
    page: Page, bridge: Bridge, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto(f"{bridge.url}/console/")
    screenshot(page, "login")
    sign_in(page, bridge)

    # A simulated chat, as Rocket.Chat would post it.
    [chat] = Simulation(seed=7).chats(1)
    report = run_async(play([chat], f"{bridge.url}/rocketchat", token=TOKEN))
    assert report.ok == report.events > 3
    page.reload()
    screenshot(page, "overview")

    page.get_by_role("link", name="Chats").click()
    row = page.get_by_role("link", name=chat.room_id)
    row.wait_for()
    screenshot(page, "chats")
    row.click()
    page.get_by_role("heading", name="Timeline").wait_for()
    assert page.locator("ol.timeline > li").count() == report.events
    assert page.locator("ol.transcript > li").count() > 0
    screenshot(page, "chat")

    page.get_by_role("link", name="Events").click()
    page.get_by_label("Type").fill("LivechatSession")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"type=LivechatSession"))
    assert page.locator("tbody tr").count() == 1
    screenshot(page, "events filtered")

    # A handler fails: the next close dies (one attempt); fixed, it is replayed from the console.
    bridge.broken = True
    close = samples.sample("chat-close")
    bridge.post(close)
    page.goto(f"{bridge.url}/console/events?status=dead")
    for _ in range(50):
        if page.locator("tbody tr").count() == 1:
            break
        page.wait_for_timeout(100)
        page.reload()
    page.locator("tbody tr a").first.click()
    page.get_by_text("the archive is down").first.wait_for()
    screenshot(page, "dead event")
    bridge.broken = False
    page.get_by_role("button", name="Replay").click()
    page.get_by_role("status").wait_for()
    for _ in range(50):
        if "Statusdone" in page.locator("dl.figures").inner_text().replace("\n", ""):
            break
        page.wait_for_timeout(100)
        page.reload()
    assert page.locator("dl.figures dd").first.inner_text().startswith("done")
    screenshot(page, "replayed event")

    # Live: a new event appears without a reload.
    page.get_by_role("link", name="Live").click()
    page.get_by_text("Connected").wait_for()
    message = samples.sample("visitor-message")
    message["messages"][0]["msg"] = "<b>appears live</b>"
    bridge.post(message)
    item = page.locator("#live li").first
    item.wait_for()
    assert "<b>appears live</b>" in item.inner_text()  # shown as text, not markup
    screenshot(page, "live")


def test_the_console_shows_nothing_without_signing_in(page: Page, bridge: Bridge) -> None:
    for path in ("/console/", "/console/events", "/console/chats", "/console/live"):
        page.goto(f"{bridge.url}{path}")
        assert page.url.endswith("/console/login")
    page.get_by_label("Your name").fill("Mallory")
    page.get_by_label("Console password").fill(TOKEN)  # the webhook's token is no password
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong password."


def test_the_pages_work_on_a_phone_and_by_keyboard(
    browser: Any, bridge: Bridge, screenshot: Callable[[Page, str], Path]
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{bridge.url}/console/login")
        page.keyboard.press("Tab")  # the skip link first, then the fields, by keyboard alone
        page.keyboard.press("Tab")
        page.keyboard.type("Kim")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Overview").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone's screen
        screenshot(page, "phone overview")
    finally:
        context.close()
