"""context.reply against a fake of Rocket.Chat's REST API; the trigger endpoint and the sender's
trigger caller, both as Rocket.Chat behaves."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import TOKEN_HEADER, AnyEvent, samples
from omnihook.receiver import (
    HandlerContext,
    HandlingPolicy,
    ReplyError,
    RocketChatApi,
    Router,
    TriggerRequest,
    Worker,
    create_app,
)
from omnihook.sender import call_trigger_service
from omnihook.sender.testing import RocketChat
from omnihook.store import Store

ROOT = Path(__file__).resolve().parents[2]


class FakeRocketChat:
    """Rocket.Chat's chat.sendMessage: auth headers, rooms, ids refused when already used."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.messages: dict[str, dict[str, str]] = {}
        self.fail_next: list[int] = []
        server.expect_request("/api/v1/chat.sendMessage", method="POST").respond_with_handler(
            self._send
        )

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _send(self, request: Request) -> Response:
        if (
            request.headers.get("X-User-Id") != "bot-id"
            or request.headers.get("X-Auth-Token") != "bot-token"
        ):
            return Response(
                json.dumps({"status": "error", "message": "You must be logged in to do this."}), 401
            )
        if self.fail_next:
            return Response(json.dumps({"success": False, "error": "busy"}), self.fail_next.pop(0))
        message = (request.get_json() or {})["message"]
        if message["rid"] == "nope":
            return Response(
                json.dumps(
                    {
                        "success": False,
                        "error": "error-room-not-found",
                        "errorType": "error-room-not-found",
                    }
                ),
                400,
            )
        if message.get("_id") in self.messages:
            return Response(
                json.dumps(
                    {
                        "success": False,
                        "error": "E11000 duplicate key error collection: rocketchat.rocketchat_message index: _id_ dup key",
                    }
                ),
                400,
            )
        message_id = message.get("_id") or f"auto{len(self.messages)}"
        self.messages[message_id] = message
        return Response(
            json.dumps(
                {
                    "message": {**message, "_id": message_id, "ts": "2025-01-01T10:00:00.000Z"},
                    "success": True,
                }
            ),
            200,
        )


@pytest.fixture
def rest(httpserver: HTTPServer) -> FakeRocketChat:
    return FakeRocketChat(httpserver)


@pytest.fixture
async def api(rest: FakeRocketChat) -> AsyncIterator[RocketChatApi]:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    client = RocketChatApi(rest.url, "bot-id", "bot-token", sleep=no_wait)
    yield client
    await client.aclose()


async def test_reply_posts_into_the_events_room_as_the_bot(
    rest: FakeRocketChat, api: RocketChatApi
) -> None:
    router = Router()

    @router.on_visitor_message
    async def answer(event: AnyEvent, context: HandlerContext) -> None:
        await context.reply("Thanks, an agent will be with you shortly.")

    app = create_app(router, tokens=["t"], rocketchat=api)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        response = await client.post(
            "/rocketchat", json=samples.sample("visitor-message"), headers={TOKEN_HEADER: "t"}
        )
    assert response.status_code == 200
    [(request, _)] = rest.server.log
    assert request.get_json()["message"]["rid"] == "hX4Lq2rNwPZ8Kc7Ry"
    assert request.get_json()["message"]["msg"] == "Thanks, an agent will be with you shortly."
    assert len(request.get_json()["message"]["_id"]) == 17


async def test_a_retried_handler_does_not_post_its_reply_twice(
    rest: FakeRocketChat, api: RocketChatApi, tmp_path: Path
) -> None:
    router = Router()
    attempts: list[int] = []

    @router.on_visitor_message
    async def answer_then_fail_once(event: AnyEvent, context: HandlerContext) -> None:
        await context.reply("first reply")
        await context.reply("second reply")
        attempts.append(context.attempt)
        if context.attempt == 1:
            raise ConnectionError("the CRM call after the replies failed")

    async with Store.open(f"sqlite:///{tmp_path / 'db'}") as store:
        clock = [datetime.now(UTC).timestamp() + 1]
        worker = Worker(store, router, rocketchat=api, clock=lambda: clock[0],
                        policy=HandlingPolicy(initial_delay=1, jitter=0))  # fmt: skip
        app = create_app(router, tokens=["t"], store=store, run_worker=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://r"
        ) as client:
            await client.post(
                "/rocketchat", json=samples.sample("visitor-message"), headers={TOKEN_HEADER: "t"}
            )
        await worker.drain()
        clock[0] += 5
        await worker.drain()
    assert attempts == [1, 2]
    assert [m["msg"] for m in rest.messages.values()] == ["first reply", "second reply"]
    assert len(rest.server.log) == 4  # the second attempt's posts were refused as duplicates


async def test_reply_errors_are_clear(rest: FakeRocketChat, api: RocketChatApi) -> None:
    with pytest.raises(ReplyError, match="refused the reply in room nope: error-room-not-found"):
        await api.send_message("nope", "hi")
    rest.fail_next = [503, 503, 503]
    with pytest.raises(ReplyError, match=r"Rocket.Chat answered 503: busy \(after 3 attempts\)"):
        await api.send_message("R1", "hi")
    rest.fail_next = [502]
    assert (await api.send_message("R1", "after one retry"))["msg"] == "after one retry"
    intruder = RocketChatApi(rest.url, "bot-id", "stolen")
    with pytest.raises(
        ReplyError, match=r"refused the reply user's credentials.*You must be logged in"
    ):
        await intruder.send_message("R1", "hi")
    await intruder.aclose()


async def test_reply_without_an_api_or_a_room_says_what_is_missing() -> None:
    with pytest.raises(
        RuntimeError, match=r"replies need Rocket.Chat's REST API: create_app\(\.\.\., rocketchat="
    ):
        await HandlerContext(room_id="R1").reply("hi")

    class Replier:
        async def send_message(
            self, room_id: str, text: str, message_id: str | None = None
        ) -> dict[str, str]:
            return {}

    with pytest.raises(RuntimeError, match="no room to reply into"):
        await HandlerContext(replier=Replier()).reply("hi")


def trigger_app() -> object:
    router = Router()

    @router.trigger
    async def greet(request: TriggerRequest) -> list[str] | None:
        if request.visitor_token == "quiet":
            return None
        if request.visitor_token == "boom":
            raise RuntimeError("lookup failed")
        return [f"Hello from {request.metadata.get('page', '?')}!", "Need help?"]

    return create_app(router, tokens=["t"])


async def test_trigger_endpoint_answers_what_rocket_chat_accepts() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=trigger_app()), base_url="http://r"
    ) as client:

        async def ask(body: object, token: str = "t") -> httpx.Response:
            return await client.post(
                "/rocketchat/trigger", json=body, headers={TOKEN_HEADER: token}
            )

        ok = await ask({"visitorToken": "v1", "metadata": [{"key": "page", "value": "pricing"}]})
        assert ok.status_code == 200
        assert ok.json() == {
            "contents": [
                {"msg": "Hello from pricing!", "order": 0},
                {"msg": "Need help?", "order": 1},
            ]
        }
        assert (await ask({"visitorToken": "quiet"})).status_code == 204  # the fallback shows
        assert (await ask({"visitorToken": "boom"})).status_code == 500
        assert (await ask({"metadata": []})).json()[
            "detail"
        ] == "visitorToken: required, a non-empty string"
        assert (await ask({"visitorToken": "v1"}, token="nope")).status_code == 401
        # metadata is a list (or null, or absent); any other value is refused, an empty one too.
        assert (await ask({"visitorToken": "v1", "metadata": None})).status_code == 200
        for wrong in ({}, "", 0, False, {"page": "docs"}):
            refused = await ask({"visitorToken": "v1", "metadata": wrong})
            assert refused.status_code == 422, wrong


async def test_the_sender_calls_a_trigger_service_as_rocket_chat_does(
    serve_app: object, httpserver: HTTPServer
) -> None:
    server = serve_app(trigger_app())  # type: ignore[operator]
    url = f"{server.url}/rocketchat/trigger"
    answer = await call_trigger_service(
        url, secret="t", visitor_token="v1", metadata={"page": "docs"}, fallback="Hi!"
    )
    assert (answer.messages, answer.fallback_used) == (["Hello from docs!", "Need help?"], False)
    quiet = await call_trigger_service(url, secret="t", visitor_token="quiet", fallback="Hi!")
    assert (quiet.messages, quiet.fallback_used, quiet.reason) == (["Hi!"], True, "HTTP 204")
    no_secret = await call_trigger_service(url, secret="", visitor_token="v1", fallback="Hi!")
    assert no_secret.reason == "no secret token: Rocket.Chat does not call the service"
    httpserver.expect_request("/odd").respond_with_json({"contents": []})
    odd = await call_trigger_service(
        httpserver.url_for("/odd"), secret="t", visitor_token="v", fallback="Hi!"
    )
    assert odd.fallback_used
    assert "not the answer Rocket.Chat accepts" in (odd.reason or "")
    [(request, _)] = httpserver.log
    assert request.headers["Accept"] == "application/json"
    assert request.headers[TOKEN_HEADER] == "t"
    assert request.get_json() == {"visitorToken": "v"}


async def test_the_example_autoresponder_answers_in_the_chat(
    rest: FakeRocketChat,
    api: RocketChatApi,
    rocketchat: RocketChat,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("examples.autoresponder", None)
    module = importlib.import_module("examples.autoresponder")
    rocketchat.use(create_app(module.router, tokens=["t"], rocketchat=api), token="t")

    chat = rocketchat.chat(custom_fields={"orderId": "A-10042"})
    await chat.start()
    await chat.take()
    await chat.visitor_says("Where is my order?")
    await chat.agent_says("Let me look.")  # agents' messages get no answer
    other = rocketchat.chat()
    await other.start()
    await other.visitor_says("Can you help me with my order?")  # no orderId: it asks
    chat.assert_all_ok()
    replies = [(m["rid"], m["msg"]) for m in rest.messages.values()]
    assert replies == [
        (
            chat.room_id,
            "Your order A-10042 is shipped on Monday, tracking number 1Z999AA10123456784.",
        ),
        (other.room_id, "Which order number is it about?"),
    ]
    assert module.office_open(datetime(2025, 1, 1, 10, tzinfo=UTC))
    assert not module.office_open(datetime(2025, 1, 1, 22, tzinfo=UTC))
    greeting = module.greet(TriggerRequest("v", {"page": "pricing"}))
    assert greeting[0] == "Welcome back! Need help with pricing?"
