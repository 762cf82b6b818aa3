"""Navigation messages reach ``on_navigation`` handlers, never agent or visitor message handlers.

Rocket.Chat writes them as the ``rocket.cat`` user and so marks them ``agentId: "rocket.cat"``:
told apart by ``agentId`` alone, they looked like agent messages.
"""

from __future__ import annotations

import json

import httpx

from omnihook.contracts import AnyEvent, MessageEvent, parse_event, samples
from omnihook.receiver import TOKEN_HEADER, Router, create_app

from ..contracts.wild_forms import WILD_FORMS


def _router(calls: list[tuple[str, str]]) -> Router:
    router = Router()

    @router.on_agent_message
    def agent(event: MessageEvent) -> None:
        calls.append(("agent", event.type))

    @router.on_visitor_message
    def visitor(event: MessageEvent) -> None:
        calls.append(("visitor", event.type))

    @router.on_navigation
    async def navigation(event: MessageEvent) -> None:
        assert event.message is not None
        assert event.message.navigation is not None
        page = event.message.navigation.page
        calls.append(("navigation", page.location.href if page and page.location else ""))

    return router


async def test_each_kind_of_message_reaches_only_its_handlers() -> None:
    calls: list[tuple[str, str]] = []
    router = _router(calls)
    events: dict[str, AnyEvent] = {
        "navigation": parse_event(WILD_FORMS["navigation_message"]()),
        "agent": parse_event(samples.sample("agent-message")),
        "visitor": parse_event(samples.sample("visitor-message")),
    }
    for kind, event in events.items():
        calls.clear()
        result = await router.dispatch(event)
        assert result.handlers_run == 1, kind
        assert [call[0] for call in calls] == [kind]
    assert router.handlers_for(events["navigation"]) == [
        "_router.navigation"
    ]  # not "_router.agent", though the message carries agentId
    assert router.handlers_for(parse_event(samples.sample("chat-close"))) == []


async def test_a_navigation_delivery_through_the_app() -> None:
    calls: list[tuple[str, str]] = []
    app = create_app(_router(calls), tokens=["t"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rc"
    ) as client:
        response = await client.post(
            "/rocketchat",
            content=json.dumps(WILD_FORMS["navigation_message"]()).encode(),
            headers={TOKEN_HEADER: "t", "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert calls == [("navigation", "https://shop.example.com/pricing")]
