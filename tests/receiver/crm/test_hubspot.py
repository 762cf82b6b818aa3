"""HubSpot adapter against the HubSpot fake: requests, upserts, notes in place, failures."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from omnihook.receiver.crm import HubSpotAdapter
from omnihook.receiver.crm.testing import FakeHubSpot

from .conftest import Bridge, chat

CHAT_URL = "https://chat.example.com/omnichannel/current/{room_id}"


@pytest.fixture
def hubspot(httpserver: HTTPServer) -> FakeHubSpot:
    fake = FakeHubSpot(httpserver)
    fake.owners["emma@support.example.com"] = "77"
    return fake


@pytest.fixture
def adapter(bridge: Bridge, hubspot: FakeHubSpot) -> HubSpotAdapter:
    made = HubSpotAdapter(token=hubspot.token, base_url=hubspot.base_url, links=bridge.store.crm_links,
                          chat_url=CHAT_URL, field_map={"plan": "plan", "orderId": "order_id"})  # fmt: skip
    bridge.add(made)
    return made


async def test_start_upserts_the_contact_with_the_exact_request(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    await bridge.deliver(*chat("chat-start"))
    [request] = hubspot.requests()
    assert (request.method, request.path) == ("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert request.headers["Authorization"] == f"Bearer {hubspot.token}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_json() == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "jane.doe@example.com",
                "properties": {
                    "email": "jane.doe@example.com",
                    "firstname": "Jane",
                    "lastname": "Doe",
                    "phone": "+15551234567",
                    "plan": "pro",
                    "order_id": "A-10042",
                },
            }
        ]
    }


async def test_insert_then_update_and_ids_go_back_as_crm_data(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    await bridge.deliver(*chat("chat-start", "chat-taken"))
    assert list(hubspot.contacts) == ["jane.doe@example.com"]
    contact_id = hubspot.contacts["jane.doe@example.com"]["id"]
    [answer] = await bridge.deliver(*chat("visitor-message"))
    assert answer == {"hubspot": {"contactId": contact_id}}


async def test_close_writes_a_note_and_edit_or_redelivery_updates_it_in_place(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    await bridge.deliver(*chat("chat-start", "chat-close"))
    [(note_id, note)] = hubspot.notes.items()
    contact_id = hubspot.contacts["jane.doe@example.com"]["id"]
    assert note["associations"] == [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }
    ]
    properties = note["properties"]
    assert properties["hs_timestamp"] == "2025-03-14T09:36:00Z"
    assert properties["hubspot_owner_id"] == "77"
    assert (
        "[2025-03-14 09:30:04] Jane Doe: Hi, my order A-10042 has not arrived yet."
        in properties["hs_note_body"]
    )
    assert properties["hs_note_body"].endswith(
        "https://chat.example.com/omnichannel/current/hX4Lq2rNwPZ8Kc7Ry"
    )
    [close] = [e for e in await bridge.events() if e.type == "LivechatSession"]
    assert (
        await bridge.store.events.replay([close.id], now=bridge.now, all_handlers=True)
    ).replayed
    await bridge.worker.drain()  # the close handled again
    await bridge.deliver(*chat("chat-edit"))  # then an edit after close
    assert list(hubspot.notes) == [note_id]  # never a second note
    assert len(hubspot.requests("PATCH", f"/crm/v3/objects/notes/{note_id}")) == 2
    assert (
        "Tags: shipping, vip, refund" in hubspot.notes[note_id]["properties"]["hs_note_body"]
    )  # the edit
    assert len(hubspot.requests("GET", "/crm/v3/owners")) == 1  # owners are looked up once


async def test_rate_limit_waits_the_window_then_succeeds(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    hubspot.rate_limit_next()
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "failed"
    assert event.next_attempt_at == pytest.approx(
        bridge.now + 10
    )  # X-HubSpot-RateLimit-Interval-Milliseconds
    assert "ten_secondly_rolling" in (event.last_error or "")
    await bridge.later(10)
    assert (await bridge.events())[0].status == "done"
    assert "jane.doe@example.com" in hubspot.contacts


async def test_validation_error_is_dead_lettered_with_hubspots_message(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    hubspot.reject_next('Property "plan" does not exist')
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert event.attempts == 1
    assert 'HubSpot 400: Property "plan" does not exist' in (event.last_error or "")


async def test_a_revoked_token_is_a_configuration_error_naming_the_setting(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    hubspot.revoke_token()
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert "HubSpot rejected the token from token_env" in (event.last_error or "")


async def test_visitors_without_email_and_the_send_test_never_reach_hubspot(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    anonymous = chat("chat-start")[0]
    del anonymous["visitor"]["email"]
    await bridge.deliver(anonymous)
    from omnihook.contracts import samples

    await bridge.deliver(samples.send_test_sample())
    assert hubspot.requests() == []


async def test_a_used_up_window_delays_the_next_call(
    bridge: Bridge, hubspot: FakeHubSpot, httpserver: HTTPServer
) -> None:
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    adapter = HubSpotAdapter(token=hubspot.token, base_url=hubspot.base_url, sleep=record_wait)
    bridge.add(adapter)
    hubspot.remaining = 1  # this call uses the window's last request
    await bridge.deliver(*chat("chat-start"))
    assert waits == []
    await bridge.deliver(*chat("chat-taken"))
    assert len(waits) == 1
    assert 9 < waits[0] <= 10  # X-HubSpot-RateLimit-Interval-Milliseconds: 10000


async def test_the_note_owner_is_found_from_a_0_6x_agent_email_array(
    bridge: Bridge, hubspot: FakeHubSpot, adapter: HubSpotAdapter
) -> None:
    start, close = chat("chat-start", "chat-close")
    close["agent"]["email"] = [{"address": "emma@support.example.com", "verified": True}]
    await bridge.deliver(start, close)
    [note] = hubspot.notes.values()
    assert note["properties"]["hubspot_owner_id"] == "77"
    [request] = hubspot.requests("GET", "/crm/v3/owners")
    assert request.args["email"] == "emma@support.example.com"
