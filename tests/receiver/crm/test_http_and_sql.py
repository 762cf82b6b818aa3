"""The HTTP forward and the SQL CRM adapters."""

from __future__ import annotations

import json

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import EventType, samples
from omnihook.receiver.crm import HttpForwardAdapter, SqlCrmAdapter

from .conftest import Bridge, chat


async def test_forward_reposts_the_exact_body_with_its_own_token(
    bridge: Bridge, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/events", method="POST").respond_with_data("", status=204)
    bridge.add(
        HttpForwardAdapter(
            url=httpserver.url_for("/events"), token="downstream", token_header="X-Api-Key"
        )
    )
    [document] = chat("chat-close")
    await bridge.deliver(document)
    [(request, _)] = httpserver.log
    assert request.headers["X-Api-Key"] == "downstream"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == document


async def test_forward_a_subset_of_fields_for_chosen_events(
    bridge: Bridge, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/events").respond_with_data("ok")
    bridge.add(HttpForwardAdapter(url=httpserver.url_for("/events"), fields=["type", "_id", "visitor.email"],
                                  events=[EventType.CHAT_CLOSE]))  # fmt: skip
    await bridge.deliver(*chat("chat-start", "chat-close"))
    [(request, _)] = httpserver.log
    assert request.get_json() == {
        "type": "LivechatSession",
        "_id": "hX4Lq2rNwPZ8Kc7Ry",
        "visitor.email": [{"address": "jane.doe@example.com"}],
    }


async def test_forward_retries_quickly_then_leaves_it_to_the_worker(
    bridge: Bridge, httpserver: HTTPServer
) -> None:
    answers = iter([503, 200])
    httpserver.expect_request("/events").respond_with_handler(
        lambda r: Response("", status=next(answers))
    )
    bridge.add(HttpForwardAdapter(url=httpserver.url_for("/events"), attempts=2, delay=0.01))
    await bridge.deliver(*chat("chat-start"))
    assert len(httpserver.log) == 2
    assert (await bridge.events())[0].status == "done"


async def test_forward_dead_letters_a_refusal(bridge: Bridge, httpserver: HTTPServer) -> None:
    def refuse(request: Request) -> Response:
        return Response('{"error":"unknown tenant"}', status=404)

    httpserver.expect_request("/events").respond_with_handler(refuse)
    bridge.add(HttpForwardAdapter(url=httpserver.url_for("/events")))
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert 'answered 404: {"error":"unknown tenant"}' in (event.last_error or "")


async def test_sql_crm_keeps_contacts_conversations_and_messages(bridge: Bridge) -> None:
    bridge.add(SqlCrmAdapter(bridge.store))
    answers = await bridge.deliver(*chat("chat-start", "chat-taken", "chat-queued", "visitor-message",
                                         "chat-close", "chat-edit", "offline-message"))  # fmt: skip
    contacts = await bridge.store.sql_crm.contacts()
    assert [(c.name, c.email, c.conversations) for c in contacts] == [
        ("Omar Haddad", "omar.haddad@example.org", 1),
        ("Jane Doe", "jane.doe@example.com", 1),
    ]
    jane = contacts[1]
    assert jane.custom_fields == {"plan": "pro", "orderId": "A-10042"}
    assert answers[0] == {"ok": True}  # answered before handling
    assert answers[1] == {"sql": {"contactId": jane.id}}  # the next answer carries the id
    found = await bridge.store.sql_crm.conversation("hX4Lq2rNwPZ8Kc7Ry")
    assert found is not None
    conversation, contact, messages = found
    assert (conversation.status, conversation.closer, conversation.agent) == (
        "closed",
        "user",
        "emma.brown",
    )
    assert conversation.tags == ["shipping", "vip", "refund"]  # the edit after close
    assert contact is not None
    assert contact.id == jane.id
    assert [(m.author, m.author_kind) for m in messages[:2]] == [
        ("Jane Doe", "visitor"),
        ("Agent Smith", "agent"),
    ]
    assert len(messages) == 6  # each message once, whatever the number of events that carried it
    assert messages[4].edited


async def test_sql_crm_does_not_move_a_conversation_back_on_a_stale_event(bridge: Bridge) -> None:
    bridge.add(SqlCrmAdapter(bridge.store))
    await bridge.deliver(*chat("chat-taken", "chat-queued"))  # Queued after Taken: stale
    found = await bridge.store.sql_crm.conversation("hX4Lq2rNwPZ8Kc7Ry")
    assert found is not None
    assert found[0].status == "served"
    assert found[0].last_event == "LivechatSessionQueued"


async def test_the_send_test_sample_reaches_no_adapter(bridge: Bridge) -> None:
    bridge.add(SqlCrmAdapter(bridge.store))
    await bridge.deliver(samples.send_test_sample())
    assert await bridge.store.sql_crm.contacts() == []
