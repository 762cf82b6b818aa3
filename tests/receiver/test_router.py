"""Router: which handlers run, how results merge, how failures are reported."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from omnihook.contracts import (
    AnyEvent,
    EventType,
    LivechatSession,
    UnknownEvent,
    parse_event,
    samples,
)
from omnihook.receiver import (
    HandlerContext,
    HandlerFailures,
    HandlerTimeout,
    PermanentError,
    Router,
)


def event(name: str) -> AnyEvent:
    return parse_event(samples.sample(name))


async def test_every_matching_handler_runs_in_registration_order() -> None:
    router = Router()
    calls: list[str] = []

    @router.on_any
    async def first(e: AnyEvent) -> None:
        calls.append("any")

    @router.on(EventType.CHAT_CLOSE, EventType.CHAT_EDIT)
    async def close_or_edit(e: AnyEvent) -> None:
        calls.append(f"close_or_edit:{e.type}")

    @router.on("Chat Close")
    def by_label(e: AnyEvent) -> None:
        calls.append("by_label")

    @router.on(EventType.CHAT_START)
    async def start(e: AnyEvent) -> None:
        calls.append("start")

    result = await router.dispatch(event("chat-close"))
    assert calls == ["any", "close_or_edit:LivechatSession", "by_label"]
    assert result.handlers_run == 3
    calls.clear()
    await router.dispatch(event("chat-edit"))
    assert calls == ["any", "close_or_edit:LivechatEdit"]
    assert router.handlers_for(event("chat-start")) == [
        "test_every_matching_handler_runs_in_registration_order.first",
        "test_every_matching_handler_runs_in_registration_order.start",
    ]


async def test_visitor_and_agent_messages_go_to_their_handlers() -> None:
    router = Router()
    seen: list[tuple[str, str]] = []

    @router.on_visitor_message
    async def visitor(e: AnyEvent) -> None:
        seen.append(("visitor", e.type))

    @router.on_agent_message
    async def agent(e: AnyEvent) -> None:
        seen.append(("agent", e.type))

    @router.on(EventType.MESSAGE)
    async def both(e: AnyEvent) -> None:
        seen.append(("both", e.type))

    await router.dispatch(event("visitor-message"))
    await router.dispatch(event("agent-message"))
    await router.dispatch(event("chat-close"))
    assert seen == [
        ("visitor", "Message"),
        ("both", "Message"),
        ("agent", "Message"),
        ("both", "Message"),
    ]


async def test_unknown_types_reach_only_catch_all_handlers() -> None:
    router = Router()
    seen: list[AnyEvent] = []
    router.on_any(seen.append)
    router.on(*EventType)(lambda e: pytest.fail("a typed handler got an unknown type"))
    unknown = parse_event({"type": "LivechatSessionPaused", "_id": "R1"})
    await router.dispatch(unknown)
    assert len(seen) == 1
    assert isinstance(seen[0], UnknownEvent)


async def test_send_test_sample_reaches_only_test_handlers() -> None:
    router = Router()
    seen: list[str] = []
    router.on_any(lambda e: seen.append("any"))
    router.on(EventType.CHAT_CLOSE)(lambda e: seen.append("close"))
    router.on_test(lambda e: seen.append("test"))
    await router.dispatch(parse_event(samples.send_test_sample()))
    assert seen == ["test"]
    await router.dispatch(event("chat-close"))
    assert seen == ["test", "any", "close"]


async def test_sync_handlers_run_off_the_event_loop_and_get_the_context() -> None:
    router = Router()
    loop_thread = threading.get_ident()
    seen: dict[str, Any] = {}

    @router.on(EventType.CHAT_CLOSE)
    def sync_handler(e: LivechatSession, context: HandlerContext) -> dict[str, str]:
        seen["thread"] = threading.get_ident()
        seen["body"] = context.raw_body
        return {"ticket": "T-1"}

    result = await router.dispatch(event("chat-close"), HandlerContext(raw_body=b"{...}"))
    assert seen["thread"] != loop_thread
    assert seen["body"] == b"{...}"
    assert result.crm_data == {"ticket": "T-1"}


async def test_returned_mappings_merge_in_order() -> None:
    router = Router()
    router.on_any(lambda e: {"a": 1, "shared": "first"})
    router.on_any(lambda e: None)

    @router.on_any
    async def later(e: AnyEvent) -> dict[str, Any]:
        return {"b": 2, "shared": "second"}

    result = await router.dispatch(event("chat-start"))
    assert result.crm_data == {"a": 1, "shared": "second", "b": 2}


async def test_failures_are_aggregated_and_the_other_handlers_still_run() -> None:
    router = Router()
    ran: list[str] = []

    @router.on_any
    async def broken(e: AnyEvent) -> None:
        raise RuntimeError("CRM down")

    @router.on_any
    def fine(e: AnyEvent) -> None:
        ran.append("fine")

    @router.on_any
    def wrong_result(e: AnyEvent) -> str:
        return "not a mapping"

    with pytest.raises(HandlerFailures) as caught:
        await router.dispatch(event("chat-close"))
    assert ran == ["fine"]
    failures = caught.value
    assert [f.handler.rsplit(".", 1)[-1] for f in failures.failures] == ["broken", "wrong_result"]
    assert isinstance(failures.failures[0].error, RuntimeError)
    assert isinstance(failures.failures[1].error, TypeError)
    assert "returned str; a handler returns a mapping" in str(failures.failures[1].error)
    assert str(failures).startswith(
        "2 of 3 handler(s) failed for LivechatSession (room hX4Lq2rNwPZ8Kc7Ry)"
    )


def test_registration_mistakes_are_reported_at_once() -> None:
    router = Router()
    with pytest.raises(TypeError, match="at least one event type"):
        router.on()
    with pytest.raises(ValueError, match="unknown event type 'Chat Paused'"):
        router.on("Chat Paused")
    with pytest.raises(TypeError, match="must be callable"):
        router.on_any(42)  # type: ignore[type-var]


async def test_include_composes_routers() -> None:
    first, second = Router(), Router()
    seen: list[str] = []
    first.on_any(lambda e: seen.append("first"))
    second.on(EventType.CHAT_START)(lambda e: seen.append("second"))
    first.include(second)
    await first.dispatch(event("chat-start"))
    assert seen == ["first", "second"]
    assert len(first) == 2


async def test_run_reports_each_handler_and_skips_those_already_done() -> None:
    router = Router()
    router.on_any(lambda e: {"a": 1})
    router.on_any(lambda e: {"b": 2})  # same name: made unique

    @router.on_any
    async def broken(e: AnyEvent) -> None:
        raise PermanentError("rejected")

    names = router.handlers_for(event("chat-start"))
    assert names[:2] == [
        "test_run_reports_each_handler_and_skips_those_already_done.<lambda>",
        "test_run_reports_each_handler_and_skips_those_already_done.<lambda>#2",
    ]
    outcome = await router.run(event("chat-start"), skip={names[0]})
    assert outcome.succeeded == (names[1],)
    assert outcome.crm_data == {"b": 2}
    assert [f.handler for f in outcome.failures] == [names[2]]
    assert outcome.permanent


async def test_run_times_out_slow_handlers_sync_or_async() -> None:
    router = Router()
    release = threading.Event()

    @router.on_any
    async def slow_async(e: AnyEvent) -> None:
        await asyncio.sleep(10)

    @router.on_any
    def slow_sync(e: AnyEvent) -> None:
        release.wait(10)

    @router.on_any
    async def own_timeout(e: AnyEvent) -> None:
        raise TimeoutError("the CRM call timed out")

    outcome = await router.run(event("chat-start"), timeout=0.1)
    release.set()
    errors = {f.handler.rsplit(".", 1)[-1]: f.error for f in outcome.failures}
    assert isinstance(errors["slow_async"], HandlerTimeout)
    assert isinstance(errors["slow_sync"], HandlerTimeout)
    assert str(errors["slow_sync"]) == "did not finish within 0.1 s"
    assert type(errors["own_timeout"]) is TimeoutError  # not mistaken for ours
