"""Zoho adapter against the Zoho fake: token refresh, upserts with duplicate checks, notes."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer

from omnihook.receiver.crm import ZohoAdapter
from omnihook.receiver.crm.testing import FakeZoho

from .conftest import Bridge, chat


@pytest.fixture
def zoho(httpserver: HTTPServer) -> FakeZoho:
    return FakeZoho(httpserver)


@pytest.fixture
def adapter(bridge: Bridge, zoho: FakeZoho) -> ZohoAdapter:
    made = ZohoAdapter(client_id=zoho.client_id, client_secret=zoho.client_secret,
                       refresh_token=zoho.refresh_token, accounts_url=zoho.base_url,
                       links=bridge.store.crm_links, field_map={"plan": "Plan__c"})  # fmt: skip
    bridge.add(made)
    return made


async def test_token_then_upsert_with_the_exact_requests(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    await bridge.deliver(*chat("chat-start"))
    token_request, upsert = zoho.requests()
    assert (token_request.method, token_request.path) == ("POST", "/oauth/v2/token")
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [zoho.refresh_token],
        "client_id": [zoho.client_id],
        "client_secret": [zoho.client_secret],
    }
    assert (upsert.method, upsert.path) == (
        "POST",
        "/crm/v8/Leads/upsert",
    )  # on the token's api_domain
    assert upsert.headers["Authorization"] == "Zoho-oauthtoken 1000.access.1"
    assert upsert.get_json() == {
        "data": [{"Last_Name": "Doe", "First_Name": "Jane", "Email": "jane.doe@example.com",
                  "Phone": "+15551234567", "Lead_Source": "Chat", "Plan__c": "pro"}],
        "duplicate_check_fields": ["Email"],
        "trigger": ["workflow"],
    }  # fmt: skip


async def test_insert_then_update_one_token_for_both(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    answers = await bridge.deliver(*chat("chat-start", "chat-taken", "visitor-message"))
    [(record_id, record)] = zoho.records["Leads"].items()
    assert record["Email"] == "jane.doe@example.com"
    assert zoho.tokens_issued == 1
    assert answers[-1] == {"zoho": {"recordId": record_id, "module": "Leads"}}


async def test_close_adds_a_note_and_the_edit_updates_it(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    await bridge.deliver(*chat("chat-start", "chat-close", "chat-edit"))
    [(note_id, note)] = zoho.notes.items()
    [record_id] = zoho.records["Leads"]
    assert note["Parent_Id"] == {"module": {"api_name": "Leads"}, "id": record_id}
    assert note["Note_Title"] == "Chat transcript hX4Lq2rNwPZ8Kc7Ry"
    assert "Tags: shipping, vip, refund" in note["Note_Content"]  # the edit's content
    assert len(zoho.requests("PUT", f"/crm/v8/Notes/{note_id}")) == 1
    [close] = [e for e in await bridge.events() if e.type == "LivechatSession"]
    await bridge.store.events.replay([close.id], now=bridge.now, all_handlers=True)
    await bridge.worker.drain()  # a redelivered close
    assert list(zoho.notes) == [note_id]
    assert len(zoho.requests("PUT", f"/crm/v8/Notes/{note_id}")) == 2


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    await bridge.deliver(*chat("chat-start"))
    zoho.expire_access_tokens()
    await bridge.deliver(*chat("chat-taken"))
    assert zoho.tokens_issued == 2
    assert [e.status for e in await bridge.events()] == ["done", "done"]


async def test_a_bad_refresh_token_answered_with_http_200_is_a_configuration_error(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    zoho.refresh_token = "1000.revoked"
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert "Zoho refused the refresh token (invalid_code)" in (event.last_error or "")
    assert "refresh_token_env" in (event.last_error or "")


async def test_per_record_validation_error_is_dead_lettered_with_zohos_message(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    zoho.reject_next("INVALID_DATA", "invalid data", "Phone")
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert "Zoho INVALID_DATA (Phone): invalid data" in (event.last_error or "")


async def test_too_many_requests_is_retried_later(
    bridge: Bridge, zoho: FakeZoho, adapter: ZohoAdapter
) -> None:
    zoho.rate_limit_next()
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert (event.status, event.next_attempt_at) == ("failed", pytest.approx(bridge.now + 30))
    await bridge.later(30)
    assert (await bridge.events())[0].status == "done"
