"""Salesforce adapter against the Salesforce fake: Lead upsert, composite transcript, failures."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer

from omnihook.receiver.crm import SalesforceAdapter
from omnihook.receiver.crm.testing import FakeSalesforce

from .conftest import Bridge, chat

VISITOR = "5xRbK8TfWq3pLmN2v"


@pytest.fixture
def salesforce(httpserver: HTTPServer) -> FakeSalesforce:
    return FakeSalesforce(httpserver)


def make(bridge: Bridge, salesforce: FakeSalesforce, **options: object) -> SalesforceAdapter:
    adapter = SalesforceAdapter(domain_url=salesforce.base_url, client_id=salesforce.client_id,
                                client_secret=salesforce.client_secret, links=bridge.store.crm_links,
                                **options)  # type: ignore[arg-type]  # fmt: skip
    bridge.add(adapter)
    return adapter


async def test_token_then_lead_upsert_by_external_id(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    await bridge.deliver(*chat("chat-start"))
    token_request, upsert = salesforce.requests()
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["client_credentials"],
        "client_id": [salesforce.client_id],
        "client_secret": [salesforce.client_secret],
    }
    assert (upsert.method, upsert.path) == (
        "PATCH",
        f"/services/data/v62.0/sobjects/Lead/RC_Visitor_Id__c/{VISITOR}",
    )
    assert upsert.headers["Authorization"] == "Bearer 00D5g000004ABCD!token1"
    assert upsert.get_json() == {"LastName": "Doe", "Company": "[not provided]", "FirstName": "Jane",
                                 "Email": "jane.doe@example.com", "Phone": "+15551234567", "LeadSource": "Chat"}  # fmt: skip


async def test_insert_then_update_and_the_transcript_in_one_composite_call(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    answers = await bridge.deliver(*chat("chat-start", "chat-taken", "chat-close", "chat-edit"))
    [(lead_id, lead)] = salesforce.leads.items()
    assert lead["RC_Visitor_Id__c"] == VISITOR
    [(task_id, task)] = salesforce.tasks.items()
    assert task["WhoId"] == lead_id
    assert task["ActivityDate"] == "2025-03-14"
    assert "Tags: shipping, vip, refund" in task["Description"]  # updated by the edit, in place
    first, second = (
        json.loads(r.get_data())
        for r in salesforce.requests("POST", "/services/data/v62.0/composite")
    )
    assert [sub["method"] for sub in first["compositeRequest"]] == ["PATCH", "POST"]
    assert first["compositeRequest"][1]["body"]["WhoId"] == "@{lead.id}"
    assert first["allOrNone"] is True
    assert [sub["url"] for sub in second["compositeRequest"]][
        1
    ] == f"/services/data/v62.0/sobjects/Task/{task_id}"
    assert answers[-1] == {"salesforce": {"leadId": lead_id, "taskId": task_id}}
    [close] = [e for e in await bridge.events() if e.type == "LivechatSession"]
    await bridge.store.events.replay([close.id], now=bridge.now, all_handlers=True)
    await bridge.worker.drain()  # a redelivered close
    assert list(salesforce.tasks) == [task_id]
    assert list(salesforce.leads) == [lead_id]


async def test_an_expired_session_gets_one_new_token(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    await bridge.deliver(*chat("chat-start"))
    salesforce.expire_sessions()
    await bridge.deliver(*chat("chat-taken"))
    assert salesforce.tokens_issued == 2
    assert [e.status for e in await bridge.events()] == ["done", "done"]


async def test_the_daily_limit_is_not_hot_retried(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    await bridge.deliver(*chat("chat-start"))
    salesforce.exhaust_daily_limit()
    await bridge.deliver(*chat("chat-taken"))
    taken = (await bridge.events())[1]
    assert taken.status == "failed"
    assert taken.next_attempt_at == pytest.approx(bridge.now + 3600)
    assert "REQUEST_LIMIT_EXCEEDED" in (taken.last_error or "")


async def test_required_field_missing_is_dead_lettered_with_salesforces_message(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce, company="")
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert (
        "Salesforce REQUIRED_FIELD_MISSING (Company): Required fields are missing: [Company]"
        in (event.last_error or "")
    )


async def test_failed_composite_rolls_back_and_names_the_sub_request(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce, company="")
    await bridge.deliver(*chat("chat-close"))
    assert salesforce.leads == {}
    assert salesforce.tasks == {}
    [event] = await bridge.events()
    assert "REQUIRED_FIELD_MISSING" in (event.last_error or "")


async def test_a_failed_task_dead_letters_its_own_error_not_the_rolled_back_lead(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    salesforce.add_validation_rule("Task", "Subject must name the chat queue", ["Subject"])
    await bridge.deliver(*chat("chat-close"))
    assert salesforce.leads == {}  # the Lead upsert succeeded, then was rolled back
    assert salesforce.tasks == {}
    [composite] = salesforce.requests("POST", "/services/data/v62.0/composite")
    [(_, answer)] = [(r, a) for r, a in salesforce.server.log if r is composite]
    lead, task = json.loads(answer.get_data())["compositeResponse"]
    assert (lead["httpStatusCode"], lead["body"][0]["errorCode"]) == (400, "PROCESSING_HALTED")
    assert task["body"][0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    [event] = await bridge.events()
    assert event.status == "dead"
    assert (
        "Salesforce FIELD_CUSTOM_VALIDATION_EXCEPTION (Subject): Subject must name the chat queue"
        in (event.last_error or "")
    )
    assert "PROCESSING_HALTED" not in (event.last_error or "")


async def test_bad_client_credentials_name_the_settings(
    bridge: Bridge, salesforce: FakeSalesforce
) -> None:
    make(bridge, salesforce)
    salesforce.client_secret = "rotated"  # the org rotated it; the receiver's config did not
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "dead"
    assert "Salesforce refused the client credentials (invalid client credentials)" in (
        event.last_error or ""
    )
    assert "client_secret_env" in (event.last_error or "")
