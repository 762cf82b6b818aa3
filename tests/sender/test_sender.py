"""Sender against pytest-httpserver: the exact request, and Rocket.Chat's own retry cases."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import TOKEN_HEADER, parse_event, samples
from omnihook.sender import Attempt, FakeClock, RetryPolicy, Sender

TOKEN = "s3cret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sender(httpserver: HTTPServer, clock: FakeClock) -> AsyncIterator[Sender]:
    async with Sender(httpserver.url_for("/hook"), token=TOKEN, timeout=5.0, clock=clock) as sender:
        yield sender


def respond_in_turn(*responses: tuple[int, str]) -> Callable[[Request], Response]:
    """A handler answering each request with the next (status, body); the last one repeats."""
    remaining = list(responses)

    def handler(request: Request) -> Response:
        status, body = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return Response(body, status=status)

    return handler


async def test_the_request_is_the_one_rocket_chat_makes(
    httpserver: HTTPServer, sender: Sender
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data('{"id":"1"}')
    document = samples.sample("chat-close")
    delivery = await sender.send(document)
    assert delivery.ok
    assert (delivery.status, delivery.attempts, delivery.response_text) == (200, 1, '{"id":"1"}')
    assert delivery.error is None
    [(request, _)] = httpserver.log
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[TOKEN_HEADER] == TOKEN
    assert json.loads(request.get_data()) == document
    # JSON.stringify writes no spaces.
    assert (
        request.get_data()
        == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    )


async def test_models_mappings_and_raw_text_send_the_same_bytes(
    httpserver: HTTPServer, sender: Sender
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    document = samples.sample("agent-message")
    raw = json.dumps(document, separators=(",", ":"))
    for payload in (parse_event(document), document, raw, raw.encode()):
        assert (await sender.send(payload)).ok
    bodies = {request.get_data() for request, _ in httpserver.log}
    assert bodies == {raw.encode()}


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_header_when_the_token_is_empty(
    httpserver: HTTPServer, clock: FakeClock, token: str | None
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    async with Sender(httpserver.url_for("/hook"), token=token, clock=clock) as sender:
        assert (await sender.send(samples.sample("chat-start"))).ok
    [(request, _)] = httpserver.log
    assert TOKEN_HEADER not in request.headers


async def test_a_400_is_one_call_and_no_retry(
    httpserver: HTTPServer, sender: Sender, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("bad payload", status=400)
    delivery = await sender.send(samples.sample("chat-start"))
    assert not delivery.ok
    assert (delivery.status, delivery.attempts) == (400, 1)
    assert len(httpserver.log) == 1
    assert clock.sleeps == []
    assert delivery.error == (
        "HTTP 400: bad payload (not retried: only 5xx, 429, network errors and timeouts are)"
    )


async def test_a_500_then_a_200_is_two_calls_four_timeouts_apart(
    httpserver: HTTPServer, sender: Sender, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_handler(
        respond_in_turn((500, "oops"), (200, "ok"))
    )
    delivery = await sender.send(samples.sample("chat-start"))
    assert delivery.ok
    assert delivery.attempts == 2
    assert len(httpserver.log) == 2
    assert clock.sleeps == [20.0]  # 4 x the 5 s timeout
    assert [a.status for a in delivery.history] == [500, 200]
    assert delivery.history[0].retry_in == 20.0


async def test_five_500s_are_exactly_five_calls(
    httpserver: HTTPServer, sender: Sender, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    delivery = await sender.send(samples.sample("chat-start"))
    assert not delivery.ok
    assert delivery.attempts == 5
    assert len(httpserver.log) == 5
    assert clock.sleeps == [20.0, 20.0, 20.0, 20.0]
    assert delivery.error == "HTTP 500: down (gave up after 5 attempts)"


@pytest.mark.parametrize(
    ("status", "calls"), [(429, 5), (503, 5), (201, 1), (204, 1), (302, 1), (404, 1)]
)
async def test_only_200_succeeds_and_only_5xx_and_429_retry(
    httpserver: HTTPServer, sender: Sender, status: int, calls: int
) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=status)
    delivery = await sender.send(samples.sample("chat-start"))
    assert not delivery.ok
    assert len(httpserver.log) == calls


async def test_timeouts_are_retried(threaded_httpserver: HTTPServer, clock: FakeClock) -> None:
    calls: list[Request] = []

    def slow_then_fast(request: Request) -> Response:
        calls.append(request)
        if len(calls) == 1:
            time.sleep(1.0)
        return Response("ok")

    threaded_httpserver.expect_request("/hook").respond_with_handler(slow_then_fast)
    async with Sender(threaded_httpserver.url_for("/hook"), timeout=0.3, clock=clock) as sender:
        delivery = await sender.send(samples.sample("chat-start"))
    assert delivery.ok
    assert delivery.attempts == 2
    assert len(calls) == 2
    assert delivery.history[0].status is None
    assert delivery.history[0].error == "no answer within 0.3 s"
    assert clock.sleeps == [pytest.approx(1.2)]


async def test_network_errors_are_retried(clock: FakeClock) -> None:
    from ..conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    async with Sender(url, timeout=2.0, clock=clock) as sender:
        delivery = await sender.send(samples.sample("chat-start"))
    assert not delivery.ok
    assert delivery.status is None
    assert delivery.attempts == 5
    assert clock.sleeps == [8.0] * 4
    assert "ClientConnectorError" in (delivery.error or "")
    assert (delivery.error or "").endswith("(gave up after 5 attempts)")


async def test_documented_policy_retries_any_failure_ten_times_ten_seconds_apart(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("no", status=400)
    url = httpserver.url_for("/hook")
    async with Sender(url, policy=RetryPolicy.documented(), clock=clock) as sender:
        delivery = await sender.send(samples.sample("chat-start"))
    assert len(httpserver.log) == 11
    assert clock.sleeps == [10.0] * 10
    assert not delivery.ok


async def test_on_response_gets_each_rooms_crm_data_but_not_offline_messages(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data('{"contactId":"c-1"}')
    stored: dict[str, str] = {}

    async def remember(room_id: str, text: str) -> None:
        stored[room_id] = text

    url = httpserver.url_for("/hook")
    async with Sender(url, on_response=remember, clock=clock) as sender:
        await sender.send(samples.sample("chat-start"))
        await sender.send(json.dumps(samples.sample("offline-message")))
        await sender.send(parse_event(samples.sample("offline-message")))
    assert stored == {"hX4Lq2rNwPZ8Kc7Ry": '{"contactId":"c-1"}'}


async def test_on_response_is_not_called_on_failure(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=400)
    calls: list[str] = []
    url = httpserver.url_for("/hook")
    async with Sender(
        url, on_response=lambda room, text: calls.append(room), clock=clock
    ) as sender:
        await sender.send(samples.sample("chat-start"))
    assert calls == []


async def test_on_attempt_sees_every_attempt(httpserver: HTTPServer, clock: FakeClock) -> None:
    httpserver.expect_request("/hook").respond_with_handler(respond_in_turn((502, ""), (200, "ok")))
    attempts: list[Attempt] = []
    url = httpserver.url_for("/hook")
    async with Sender(url, on_attempt=attempts.append, clock=clock) as sender:
        await sender.send(samples.sample("chat-start"))
    assert [(a.number, a.status, a.retry_in) for a in attempts] == [(1, 502, 20.0), (2, 200, None)]
    assert attempts[0].error == "HTTP 502"


async def test_send_test_is_the_admin_buttons_request(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=500)
    async with Sender(httpserver.url_for("/hook")) as sender:
        delivery = await sender.send_test()
    assert not delivery.ok
    assert len(httpserver.log) == 1  # never retried
    [(request, _)] = httpserver.log
    assert request.headers["Accept"] == "application/json"
    assert request.headers[TOKEN_HEADER] == ""  # sent even when empty
    body = json.loads(request.get_data())
    assert parse_event(body).is_test


def test_sender_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        Sender("ftp://example.com")
    with pytest.raises(ValueError, match="timeout must be positive"):
        Sender("http://example.com", timeout=0)
