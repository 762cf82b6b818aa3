"""The webhook endpoint over ASGI: one test per row of the status-code table, and then some."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from omnihook.contracts import AnyEvent, EventType, samples
from omnihook.receiver import TOKEN_HEADER, Router, create_app

TOKEN = "s3cret-token-value"
OLD_TOKEN = "previous-token-value"


@pytest.fixture
def seen() -> list[AnyEvent]:
    return []


@pytest.fixture
def router(seen: list[AnyEvent]) -> Router:
    router = Router()
    router.on_any(seen.append)
    return router


@pytest.fixture
async def client(router: Router) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(router, tokens=[TOKEN, OLD_TOKEN], max_body_bytes=64 * 1024)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        yield client


async def post(
    client: httpx.AsyncClient, body: Any, token: str | None = TOKEN, **kwargs: Any
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return await client.post("/rocketchat", content=content, headers=headers, **kwargs)


async def test_accepted_event_answers_200_and_reaches_handlers(
    client: httpx.AsyncClient, seen: list[AnyEvent]
) -> None:
    response = await post(client, samples.sample("chat-start"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}
    assert [e.type for e in seen] == ["LivechatSessionStart"]


async def test_every_configured_token_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await post(client, samples.sample("chat-start"), token=OLD_TOKEN)).status_code == 200


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("wrong", "invalid_token"),
        (TOKEN + "x", "invalid_token"),
    ],
)
async def test_missing_or_wrong_token_is_401_and_never_echoed(
    client: httpx.AsyncClient,
    seen: list[AnyEvent],
    caplog: pytest.LogCaptureFixture,
    token: str | None,
    error: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await post(client, samples.sample("chat-start"), token=token)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert TOKEN_HEADER in response.json()["detail"]
    assert seen == []
    for secret in (TOKEN, OLD_TOKEN, "wrong"):
        assert secret not in response.text
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe\xfd", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
    ],
)
async def test_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, body: bytes, error: str
) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["detail"]


async def test_contract_violation_is_422_with_field_paths(client: httpx.AsyncClient) -> None:
    document = samples.sample("chat-close")
    document["messages"][1]["ts"] = 12
    del document["visitor"]["_id"]
    response = await post(client, document)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "contract_violation"
    assert body["type"] == "LivechatSession"
    assert [p["path"] for p in body["problems"]] == ["visitor._id", "messages[1].ts"]
    assert "messages[1].ts: not a Rocket.Chat date" in body["detail"]


async def test_missing_type_is_422(client: httpx.AsyncClient) -> None:
    response = await post(client, {"_id": "R1"})
    assert response.status_code == 422
    assert response.json()["problems"] == [{"path": "type", "message": "required field is missing"}]


async def test_unknown_type_is_200_and_reaches_catch_all(
    client: httpx.AsyncClient, seen: list[AnyEvent]
) -> None:
    response = await post(client, {"type": "LivechatSessionPaused", "_id": "R1"})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert [e.type for e in seen] == ["LivechatSessionPaused"]


async def test_send_test_sample_is_200_ok_and_reaches_no_handler(
    client: httpx.AsyncClient, seen: list[AnyEvent], router: Router
) -> None:
    tested: list[AnyEvent] = []
    router.on(EventType.CHAT_CLOSE)(
        lambda e: pytest.fail("the Send Test sample reached a CRM handler")
    )
    router.on_test(tested.append)
    response = await post(client, samples.send_test_sample())
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert seen == []
    assert len(tested) == 1


async def test_body_over_the_limit_is_413_by_header(client: httpx.AsyncClient) -> None:
    response = await post(client, b"{" + b" " * (64 * 1024) + b"}")
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "65536 bytes" in response.json()["detail"]


async def test_body_over_the_limit_is_413_when_streamed_without_length(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = await client.post("/rocketchat", content=chunks(), headers={TOKEN_HEADER: TOKEN})
    assert response.status_code == 413


async def test_oversized_request_without_token_is_413_first(client: httpx.AsyncClient) -> None:
    # The limit comes first: a huge unauthenticated body is refused before anything else.
    response = await post(client, b"x" * (64 * 1024 + 1), token=None)
    assert response.status_code == 413


async def test_handler_failure_is_500_naming_the_handlers(
    client: httpx.AsyncClient, router: Router
) -> None:
    @router.on(EventType.CHAT_CLOSE)
    async def push_to_crm(event: AnyEvent) -> None:
        raise ConnectionError("crm.example.com refused: api key abc123")

    response = await post(client, samples.sample("chat-close"))
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "handler_failed"
    assert body["handlers"] == ["test_handler_failure_is_500_naming_the_handlers.push_to_crm"]
    assert "ConnectionError" in body["detail"]
    assert "abc123" not in response.text  # exception messages stay in the log


async def test_handler_results_become_the_body_over_previous_crm_data(
    client: httpx.AsyncClient, router: Router
) -> None:
    router.on(EventType.CHAT_CLOSE)(lambda e: {"ticketId": "T-9"})
    close = await post(client, samples.sample("chat-close"))
    assert close.json() == {"ok": True, "contactId": "crm-7731", "ticketId": "T-9"}
    # An event whose handlers return nothing keeps the ids Rocket.Chat echoed back.
    message = await post(client, samples.sample("visitor-message"))
    assert message.json() == {"ok": True, "contactId": "crm-7731"}


async def test_results_that_are_not_json_are_500(client: httpx.AsyncClient, router: Router) -> None:
    router.on_any(lambda e: {"when": object()})
    response = await post(client, samples.sample("chat-start"))
    assert response.status_code == 500
    assert "cannot be sent as JSON" in response.json()["detail"]


async def test_healthz_and_json_errors_for_other_routes(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    wrong_method = await client.get("/rocketchat")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"
    missing = await client.post("/elsewhere")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


async def test_bad_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/rocketchat", content=b"{}", headers={TOKEN_HEADER: TOKEN, "Content-Length": "abc"}
    )
    assert response.status_code == 400


def test_create_app_refuses_no_token_unless_told() -> None:
    router = Router()
    with pytest.raises(ValueError, match="needs at least one token"):
        create_app(router)
    with pytest.raises(ValueError, match="must not be empty"):
        create_app(router, tokens=["good", ""])
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(router, tokens=["t"], max_body_bytes=0)
    with pytest.raises(ValueError, match="path must start with '/'"):
        create_app(router, tokens=["t"], path="hook")


async def test_insecure_app_accepts_requests_without_token(
    router: Router, seen: list[AnyEvent]
) -> None:
    app = create_app(router, insecure_no_token=True, path="/hook")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        response = await client.post("/hook", json=samples.sample("chat-start"))
    assert response.status_code == 200
    assert len(seen) == 1


async def test_app_mounts_inside_another_app(router: Router, seen: list[AnyEvent]) -> None:
    outer = Starlette(routes=[Mount("/hooks", app=create_app(router, tokens=[TOKEN]))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://r/hooks") as client:
        response = await post(client, samples.sample("chat-taken"))
        health = await client.get("/healthz")
    assert response.status_code == 200
    assert health.status_code == 200
    assert [e.type for e in seen] == ["LivechatSessionTaken"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=512)
    | st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8), max_size=4
        ),
    )
)
async def test_no_body_makes_the_receiver_fail(client: httpx.AsyncClient, body: bytes) -> None:
    response = await post(client, body)
    assert response.status_code in {200, 400, 422}
    assert set(response.json()) >= ({"ok"} if response.status_code == 200 else {"error", "detail"})
