"""A whole chat, end to end: Sender → real uvicorn receiver → handlers → a "CRM" (pytest-httpserver)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import (
    AnyEvent,
    EventType,
    LivechatSession,
    LivechatSessionStart,
    MessageEvent,
    RoomEvent,
    samples,
)
from omnihook.receiver import Router, create_app
from omnihook.sender import FakeClock, Sender

TOKEN = "e2e-token"

CHAT = [
    "chat-start",
    "chat-queued",
    "chat-taken",
    "visitor-message",
    "agent-message",
    "chat-forwarded",
    "chat-close",
    "offline-message",
    "lead-capture",
    "chat-edit",
]


def crm_router(crm_url: str, routed: list[tuple[str, str]]) -> Router:
    """Handlers a CRM integrator would write: one per kind of event, plus an audit trail."""
    router = Router()

    @router.on(EventType.CHAT_START)
    async def create_contact(event: LivechatSessionStart) -> dict[str, Any]:
        routed.append(("create_contact", event.type))
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{crm_url}/contacts",
                json={"email": event.visitor.first_email, "name": event.visitor.name},
            )
        return {"contactId": response.json()["id"]}

    @router.on_visitor_message
    def visitor_said(event: MessageEvent) -> None:
        routed.append(("visitor_said", event.type))

    @router.on_agent_message
    def agent_said(event: MessageEvent) -> None:
        routed.append(("agent_said", event.type))

    @router.on(EventType.CHAT_CLOSE, EventType.CHAT_EDIT)
    async def save_transcript(event: LivechatSession) -> dict[str, Any]:
        routed.append(("save_transcript", event.type))
        contact = event.parsed_crm_data()["contactId"]
        async with httpx.AsyncClient() as client:
            response = await client.put(
                f"{crm_url}/contacts/{contact}/notes/{event.room_id}",
                json={"body": event.transcript()},
            )
        return {"noteId": response.json()["id"]}

    @router.on(EventType.CHAT_QUEUED, EventType.CHAT_TAKEN, EventType.CHAT_FORWARDED)
    def room_moved(event: AnyEvent) -> None:
        routed.append(("room_moved", event.type))

    @router.on(EventType.OFFLINE_MESSAGE, EventType.LEAD_CAPTURE)
    def lead(event: AnyEvent) -> None:
        routed.append(("lead", event.type))

    @router.on_any
    async def audit(event: AnyEvent) -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{crm_url}/audit", json={"type": event.type, "room": event.room_id})

    return router


async def test_a_whole_chat_reaches_the_right_handlers_and_the_crm(
    httpserver: HTTPServer, serve_app: Any
) -> None:
    httpserver.expect_request("/contacts", method="POST").respond_with_json({"id": "crm-7"})
    notes: dict[str, str] = {}

    def put_note(request: Request) -> Response:
        note_id = request.path.rsplit("/", 1)[-1]
        notes[note_id] = request.get_json()["body"]
        return Response(json.dumps({"id": f"note-{note_id}"}), content_type="application/json")

    httpserver.expect_request(
        "/contacts/crm-7/notes/hX4Lq2rNwPZ8Kc7Ry", method="PUT"
    ).respond_with_handler(put_note)
    httpserver.expect_request("/audit", method="POST").respond_with_data("")

    routed: list[tuple[str, str]] = []
    receiver = serve_app(create_app(crm_router(httpserver.url_for(""), routed), tokens=[TOKEN]))

    crm_data: dict[str, str] = {}  # what Rocket.Chat keeps per room and echoes back

    def remember(room_id: str, text: str) -> None:
        crm_data[room_id] = text

    answers: dict[str, Any] = {}
    async with Sender(
        f"{receiver.url}/rocketchat", token=TOKEN, on_response=remember, clock=FakeClock()
    ) as sender:
        for name in CHAT:
            payload = samples.sample(name)
            if "_id" in payload:
                if payload["_id"] in crm_data:
                    payload["crmData"] = crm_data[payload["_id"]]
                else:
                    payload.pop("crmData", None)
            delivery = await sender.send(payload)
            assert delivery.ok, (name, delivery)
            answers[name] = json.loads(delivery.response_text or "null")

    assert routed == [
        ("create_contact", "LivechatSessionStart"),
        ("room_moved", "LivechatSessionQueued"),
        ("room_moved", "LivechatSessionTaken"),
        ("visitor_said", "Message"),
        ("agent_said", "Message"),
        ("room_moved", "LivechatSessionForwarded"),
        ("save_transcript", "LivechatSession"),
        ("lead", "LivechatOfflineMessage"),
        ("lead", "LeadCapture"),
        ("save_transcript", "LivechatEdit"),
    ]
    audit = [
        json.loads(request.get_data()) for request, _ in httpserver.log if request.path == "/audit"
    ]
    assert [entry["type"] for entry in audit] == [samples.sample(name)["type"] for name in CHAT]
    assert audit[7] == {"type": "LivechatOfflineMessage", "room": None}
    contact_calls = [r for r, _ in httpserver.log if r.path == "/contacts"]
    assert len(contact_calls) == 1
    assert contact_calls[0].get_json() == {"email": "jane.doe@example.com", "name": "Jane Doe"}
    # The transcript note was written on close and rewritten in place on edit.
    assert list(notes) == ["hX4Lq2rNwPZ8Kc7Ry"]
    assert notes["hX4Lq2rNwPZ8Kc7Ry"].startswith(
        "[2025-03-14 09:30:04] Jane Doe: Hi, my order A-10042"
    )
    # crmData made the round trip: ids from the start survive to the edit after close.
    assert answers["chat-start"] == {"contactId": "crm-7"}
    assert answers["visitor-message"] == {"contactId": "crm-7"}
    assert answers["chat-edit"] == {"contactId": "crm-7", "noteId": "note-hX4Lq2rNwPZ8Kc7Ry"}
    assert json.loads(crm_data["hX4Lq2rNwPZ8Kc7Ry"]) == answers["chat-edit"]


async def test_receiver_rejections_reach_the_sender_as_rocket_chat_would_see_them(
    serve_app: Any,
) -> None:
    router = Router()

    @router.on(EventType.CHAT_CLOSE)
    async def flaky(event: RoomEvent) -> None:
        raise RuntimeError("CRM timeout")

    receiver = serve_app(create_app(router, tokens=[TOKEN]))
    url = f"{receiver.url}/rocketchat"
    clock = FakeClock()
    async with Sender(url, token="wrong", clock=clock) as sender:
        unauthorized = await sender.send(samples.sample("chat-start"))
    async with Sender(url, token=TOKEN, clock=clock) as sender:
        failing = await sender.send(samples.sample("chat-close"))
        test = await sender.send_test()
    assert (unauthorized.status, unauthorized.attempts) == (401, 1)  # dropped, as Rocket.Chat does
    assert (failing.status, failing.attempts) == (500, 5)  # retried, as Rocket.Chat does
    assert clock.sleeps == [20.0] * 4
    assert (test.ok, test.response_text) == (True, '{"ok":true}')
