"""Contract-testing kit: the ``rocketchat`` and ``webhook_sink`` pytest fixtures.

Installed with omnihook-sender as a pytest plugin (entry point ``pytest11``); nothing to import.

Receivers — play chats against your ASGI app (or a URL), with real Rocket.Chat payloads::

    @pytest.fixture
    def rocketchat_target():
        return create_app(router, tokens=["s3cret"])       # or "http://127.0.0.1:8000/rocketchat"

    @pytest.fixture
    def rocketchat_token():
        return "s3cret"

    async def test_close_reaches_my_crm(rocketchat):
        chat = rocketchat.chat()
        await chat.start()
        await chat.visitor_says("hi")
        await chat.close()
        chat.assert_all_ok()

Senders — point your sender at ``webhook_sink.url``; every delivery is recorded and checked::

    async def test_my_sender(webhook_sink):
        webhook_sink.token = "s3cret"
        await my_sender.post_close(webhook_sink.url)
        webhook_sink.assert_valid()      # "delivery 1 (LivechatSession): messages[1].ts: not a Rocket.Chat date …"

The kit asserts nothing on your behalf unless asked (``assert_ok``, ``assert_all_ok``,
``assert_valid``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random
from typing import TYPE_CHECKING, Any, Literal

import httpx
import pytest

from omnihook.contracts import (
    TOKEN_HEADER,
    AnyEvent,
    EventType,
    PayloadCheck,
    check_payload,
    samples,
)

from .chat import AgentUser, ChatBuilder, Version, VisitorProfile, random_id

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer

__all__ = ["ChatSession", "Delivered", "Received", "RocketChat", "WebhookSink"]

DEFAULT_PATH = "/rocketchat"


@dataclass(frozen=True)
class Delivered:
    """One webhook the kit posted, and what the receiver answered."""

    payload: dict[str, Any] | bytes
    status: int
    text: str
    headers: dict[str, str]

    @property
    def type(self) -> str | None:
        return self.payload.get("type") if isinstance(self.payload, dict) else None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        return json.loads(self.text)

    def assert_ok(self) -> None:
        """Fail unless the receiver answered 200 (the only success Rocket.Chat knows)."""
        if not self.ok:
            raise AssertionError(
                f"{self.type or 'the payload'} was answered {self.status}, not 200: {self.text[:500]}"
            )


class _Lifespan:
    """Runs an ASGI app's lifespan (its store, its worker) around the deliveries."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def receive() -> dict[str, Any]:
            return await self._to_app.get()

        async def send(message: dict[str, Any]) -> None:
            await self._from_app.put(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._task = asyncio.create_task(self._run(scope, receive, send))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app failed to start: {message.get('message', '')}")

    async def _run(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:  # an app without lifespan support: carry on without it
            await self._from_app.put({"type": "lifespan.startup.complete"})

    async def stop(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._from_app.get(), 30)
        await self._task


class RocketChat:
    """Plays Rocket.Chat against a receiver: an ASGI app (run in process, with its lifespan) or
    the URL of a running one."""

    def __init__(
        self, target: Any = None, token: str | None = None, version: Version = "current"
    ) -> None:
        self._target = target
        self.token = token
        self.version: Version = version
        self.deliveries: list[Delivered] = []
        self._client: httpx.AsyncClient | None = None
        self._lifespan: _Lifespan | None = None
        self._url = ""
        self._chats = 0

    def use(self, target: Any, token: str | None = None) -> RocketChat:
        """Talk to ``target`` (an ASGI app or a webhook URL) with ``token``."""
        self._target, self.token = target, token
        return self

    def chat(
        self,
        *,
        visitor_name: str | None = "Jane Doe",
        email: str | None = "jane.doe@example.com",
        phone: str | None = None,
        department: str | None = None,
        custom_fields: dict[str, Any] | None = None,
        room_custom_fields: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        version: Version | None = None,
    ) -> ChatSession:
        """A new chat (a new room, a new visitor) to drive step by step."""
        self._chats += 1
        rng = Random(f"chat-{self._chats}")
        visitor = VisitorProfile(
            id=random_id(rng), token=random_id(rng), username=f"guest-{self._chats}", name=visitor_name,
            email=email, phone=phone, department=department, custom_fields=dict(custom_fields or {}),
        )  # fmt: skip
        builder = ChatBuilder(random_id(rng), visitor, started_at=datetime.now(UTC).replace(microsecond=0),
                              department_id=department, tags=tags, custom_fields=room_custom_fields,
                              version=version or self.version, rng=rng)  # fmt: skip
        return ChatSession(self, builder)

    async def send_test(self) -> Delivered:
        """What the admin page's Send Test button sends."""
        return await self.post(samples.send_test_sample(), always_token=True)

    async def post(
        self, payload: dict[str, Any] | bytes | str, *, always_token: bool = False
    ) -> Delivered:
        """Post any payload (a dict, or exact bytes) as Rocket.Chat would."""
        client = await self._ready()
        body = payload.encode() if isinstance(payload, str) else payload if isinstance(payload, bytes) else (
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())  # fmt: skip
        headers = {"Content-Type": "application/json"}
        if self.token or always_token:
            headers[TOKEN_HEADER] = self.token or ""
        response = await client.post(self._url, content=body, headers=headers)
        delivered = Delivered(payload if not isinstance(payload, str) else payload.encode(), response.status_code,
                              response.text, dict(response.headers))  # fmt: skip
        self.deliveries.append(delivered)
        return delivered

    async def settle(self) -> None:
        """Wait until the receiver's worker (if the app has one) has handled everything due."""
        worker = getattr(getattr(self._target, "state", None), "worker", None)
        if worker is not None:
            await worker.drain()

    async def aclose(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.stop()
            self._lifespan = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _ready(self) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        target = self._target
        if target is None:
            raise RuntimeError(
                "no receiver to talk to: define a `rocketchat_target` fixture (an ASGI app or a URL) "
                "or call rocketchat.use(app_or_url, token=...)"
            )
        if isinstance(target, str):
            self._client, self._url = httpx.AsyncClient(timeout=30), target
        else:
            self._lifespan = _Lifespan(target)
            await self._lifespan.start()
            path = getattr(getattr(target, "state", None), "webhook_path", DEFAULT_PATH)
            transport = httpx.ASGITransport(app=target)
            self._client = httpx.AsyncClient(
                transport=transport, base_url="http://receiver", timeout=30
            )
            self._url = path
        return self._client


class ChatSession:
    """One chat, step by step; each step posts its webhook and returns what the receiver said."""

    def __init__(self, rocketchat: RocketChat, builder: ChatBuilder) -> None:
        self._rocketchat = rocketchat
        self.builder = builder
        self.deliveries: list[Delivered] = []

    @property
    def room_id(self) -> str:
        return self.builder.room_id

    @property
    def last(self) -> Delivered:
        return self.deliveries[-1]

    async def start(self) -> Delivered:
        return await self._send(self.builder.start())

    async def queue(self) -> Delivered:
        return await self._send(self.builder.queue())

    async def take(
        self, agent: str = "agent.smith", name: str = "Agent Smith", email: str | None = None
    ) -> Delivered:
        user = AgentUser(
            random_id(Random(agent)), agent, name, email or f"{agent}@support.example.com"
        )
        return await self._send(self.builder.take(user))

    async def visitor_says(self, text: str) -> Delivered:
        return await self._send(self.builder.visitor_says(text))

    async def visitor_sends_file(
        self, name: str = "receipt.pdf", mime: str = "application/pdf"
    ) -> Delivered:
        file = {"_id": random_id(self.builder.rng), "name": name, "type": mime, "size": 48213}
        return await self._send(self.builder.visitor_says(None, file=file))

    async def agent_says(self, text: str) -> Delivered:
        return await self._send(self.builder.agent_says(text))

    async def edit_last_message(self, text: str) -> Delivered:
        return await self._send(self.builder.edit_message(-1, text))

    async def forward_to_agent(
        self, agent: str = "emma.brown", name: str = "Emma Brown"
    ) -> Delivered:
        """Rocket.Chat sends Chat Taken for the new agent, then Forwarded (returned)."""
        user = AgentUser(random_id(Random(agent)), agent, name, f"{agent}@support.example.com")
        self.builder.forward_to_agent(user)
        return await self._send_all(self.builder.last_events)

    async def forward_to_department(
        self, department_id: str, agent: str | None = None, name: str | None = None
    ) -> Delivered:
        """Forwarded (returned); with ``agent``, the department assigned one at once and Chat
        Taken comes first."""
        user = None
        if agent is not None:
            user = AgentUser(random_id(Random(agent)), agent, name or agent,
                             f"{agent}@support.example.com")  # fmt: skip
        self.builder.forward_to_department(department_id, user)
        return await self._send_all(self.builder.last_events)

    async def capture_lead(self) -> Delivered:
        return await self._send(self.builder.lead_capture())

    async def close(
        self, by: Literal["agent", "visitor"] = "agent", comment: str | None = None
    ) -> Delivered:
        return await self._send(self.builder.close(by=by, comment=comment))

    async def edit_after_close(self, tags: list[str] | None = None) -> Delivered:
        return await self._send(self.builder.edit_after_close(tags=tags))

    def assert_all_ok(self) -> None:
        """Fail, listing them, if any delivery of this chat was not answered 200."""
        bad = [f"  {d.type}: {d.status} {d.text[:200]}" for d in self.deliveries if not d.ok]
        if bad:
            raise AssertionError(
                f"{len(bad)} of {len(self.deliveries)} deliveries not answered 200:\n"
                + "\n".join(bad)
            )

    async def _send_all(self, payloads: list[dict[str, Any]]) -> Delivered:
        delivered = [await self._send(payload) for payload in payloads]
        return delivered[-1]

    async def _send(self, payload: dict[str, Any]) -> Delivered:
        delivered = await self._rocketchat.post(payload)
        self.deliveries.append(delivered)
        if delivered.ok:
            self.builder.crm_data = delivered.text  # Rocket.Chat keeps it and sends it back
        return delivered


@dataclass(frozen=True)
class Received:
    """One delivery the sink received, with the verdict on it."""

    number: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    check: PayloadCheck
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def event(self) -> AnyEvent | None:
        return self.check.event

    @property
    def type(self) -> str:
        """The payload's ``type``, even when the payload breaks the contract."""
        if self.check.event is not None:
            return self.check.event.type
        try:
            document = json.loads(self.body)
        except ValueError:
            return "not JSON"
        kind = document.get("type") if isinstance(document, dict) else None
        return kind if isinstance(kind, str) else "no type"


class WebhookSink:
    """A webhook endpoint for testing senders: records every delivery and checks it against the
    contract (method, ``Content-Type``, the token, the payload's shape per type and its dates)."""

    def __init__(self, server: HTTPServer, path: str = DEFAULT_PATH) -> None:
        from werkzeug import Request, Response

        self._response_type = Response
        self.server = server
        self.path = path
        self.token: str | None = None
        """The token the sender must send; ``None`` accepts any (and none)."""
        self.deliveries: list[Received] = []
        self._answers: list[tuple[int, str]] = []
        self._default = (200, '{"ok":true}')

        def handle(request: Request) -> Response:
            self._record(request)
            status, body = self._answers.pop(0) if self._answers else self._default
            return Response(body, status=status, content_type="application/json")

        server.expect_request(path).respond_with_handler(handle)

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def respond(
        self, status: int = 200, body: str = '{"ok":true}', times: int | None = None
    ) -> None:
        """Answer the next ``times`` deliveries (every later one when ``None``) with this."""
        if times is None:
            self._default = (status, body)
        else:
            self._answers += [(status, body)] * times

    def events(self, event_type: EventType | None = None) -> list[AnyEvent]:
        """The parsed events received, optionally of one type."""
        found = [d.event for d in self.deliveries if d.event is not None]
        return [e for e in found if event_type is None or e.event_type is event_type]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` deliveries arrived (a sender running elsewhere)."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} deliveries within {timeout:g} s, got {len(self.deliveries)}"
                )
            time.sleep(0.01)
        return self.deliveries[:count]

    async def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        """:meth:`wait_for` for async tests."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} deliveries within {timeout:g} s, got {len(self.deliveries)}"
                )
            await asyncio.sleep(0.01)
        return self.deliveries[:count]

    def problems(self) -> list[str]:
        """Every problem, as ``delivery N (type): path: what``."""
        lines = []
        for delivery in self.deliveries:
            lines += [
                f"delivery {delivery.number} ({delivery.type}): {p}" for p in delivery.problems
            ]
        return lines

    def assert_valid(self) -> None:
        """Fail, listing every problem, unless each delivery is what Rocket.Chat would send."""
        if not self.deliveries:
            raise AssertionError(f"no delivery reached {self.url}")
        lines = self.problems()
        if lines:
            raise AssertionError(
                f"{len(lines)} problem(s) in {len(self.deliveries)} deliveries:\n"
                + "\n".join(lines)
            )

    def _record(self, request: Any) -> None:
        body = request.get_data()
        headers = {key.lower(): value for key, value in request.headers.items()}
        problems: list[str] = []
        if request.method != "POST":
            problems.append(f"method: Rocket.Chat posts, got {request.method}")
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip() != "application/json":
            problems.append(
                f"Content-Type: expected application/json, got {content_type or 'none'!r}"
            )
        presented = headers.get(TOKEN_HEADER.lower())
        if self.token is not None and presented != self.token:
            problems.append(
                f"{TOKEN_HEADER}: "
                + ("missing" if presented is None else "does not match the expected token")
            )
        check = check_payload(body)
        problems += [str(problem) for problem in check.problems]
        self.deliveries.append(Received(len(self.deliveries) + 1, request.method, request.path, headers, body,
                                        check, tuple(problems)))  # fmt: skip


# -- the fixtures --------------------------------------------------------------------------------


@pytest.fixture
def rocketchat_target() -> Any:
    """Override: the receiver the ``rocketchat`` fixture talks to (an ASGI app or a URL)."""
    return None


@pytest.fixture
def rocketchat_token() -> str | None:
    """Override: the token the ``rocketchat`` fixture sends (default ``$OMNIHOOK_TOKEN``)."""
    return os.environ.get("OMNIHOOK_TOKEN") or None


try:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def rocketchat(
        rocketchat_target: Any, rocketchat_token: str | None
    ) -> AsyncIterator[RocketChat]:
        """Plays Rocket.Chat against your receiver (see :class:`RocketChat`)."""
        player = RocketChat(rocketchat_target, rocketchat_token)
        yield player
        await player.aclose()

except ImportError:  # without pytest-asyncio: no async teardown, so no app lifespan either

    @pytest.fixture
    def rocketchat(rocketchat_target: Any, rocketchat_token: str | None) -> RocketChat:
        return RocketChat(rocketchat_target, rocketchat_token)


@pytest.fixture
def webhook_sink(request: pytest.FixtureRequest) -> WebhookSink:
    """A recording, contract-checking webhook endpoint for your sender (needs pytest-httpserver)."""
    try:
        server = request.getfixturevalue("httpserver")
    except pytest.FixtureLookupError:
        raise RuntimeError(
            "webhook_sink needs pytest-httpserver: pip install 'omnihook-sender[testing]'"
        ) from None
    return WebhookSink(server)
