"""simple-salesforce, Salesforce's most used Python client, judges :class:`FakeSalesforce`.

The library logs in at ``https://{domain}.salesforce.com`` and calls
``https://{instance}/services/data/…``; a transport adapter on its ``requests.Session`` sends
every https request to the fake's local http URL instead (the fake is not bent for it).
Each call the adapter makes is made here the library's way, and each error switch of the fake
must raise what the library raises against the real service, with Salesforce's error bodies.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from omnihook.receiver.crm.testing import FakeSalesforce

API = "/services/data/v62.0"
VISITOR = "5xRbK8TfWq3pLmN2v"
LEAD = {"LastName": "Doe", "Company": "[not provided]", "FirstName": "Jane"}


class _ToTheFake(HTTPAdapter):
    """Sends https://<anything>/<path> to the fake's http://host:port/<path>."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeSalesforce:
    return FakeSalesforce(httpserver)


def _session(fake: FakeSalesforce) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _ToTheFake(fake.base_url))
    return session


def login(fake: FakeSalesforce, secret: str | None = None) -> Salesforce:
    """The client-credentials flow, as simple-salesforce does it against a My Domain."""
    return Salesforce(consumer_key=fake.client_id, consumer_secret=secret or fake.client_secret,
                      domain="omnihook-dev.my", version="62.0", session=_session(fake))  # fmt: skip


def _answer(fake: FakeSalesforce, request_path: str) -> Any:
    """The last response the fake gave to a request on ``request_path``."""
    return [answer for request, answer in fake.server.log if request.path == request_path][-1]


def _sobject(sf: Salesforce, name: str) -> SFType:
    return cast(SFType, getattr(sf, name))


def _post_composite(sf: Salesforce, body: dict[str, Any]) -> Any:
    return sf.restful("composite", method="POST", json=body)


def _content(exc: pytest.ExceptionInfo[Any]) -> Any:
    """The parsed error body the library keeps (typed bytes, but JSON answers are parsed)."""
    return exc.value.content


def _errors(exc: pytest.ExceptionInfo[Any]) -> list[str]:
    return [error["errorCode"] for error in _content(exc)]


# --- the calls the adapter makes ---------------------------------------------------------------


def test_client_credentials_login_with_http_basic_authentication(fake: FakeSalesforce) -> None:
    sf = login(fake)
    [token] = fake.requests("POST", "/services/oauth2/token")
    expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    assert token.headers["Authorization"] == f"Basic {expected}"
    assert parse_qs(token.get_data(as_text=True)) == {"grant_type": ["client_credentials"]}
    assert (sf.auth_type, sf.session_id) == ("client-credentials", "00D5g000004ABCD!token1")
    assert sf.base_url == f"https://{urlsplit(fake.base_url).netloc}{API}/"


def test_a_wrong_secret_fails_authentication_with_salesforces_error(fake: FakeSalesforce) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        login(fake, secret="rotated")
    assert (exc.value.code, exc.value.auth_message) == (
        "invalid_client",
        "invalid client credentials",
    )
    assert fake.tokens_issued == 0


def test_upsert_by_external_id_inserts_then_updates(fake: FakeSalesforce) -> None:
    leads = _sobject(
        login(fake), "Lead"
    )  # each sf.Lead is a new SFType: keep one to read its api_usage
    created = leads.upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD, raw_response=True)
    assert created.status_code == 201
    lead_id = created.json()["id"]
    assert created.json() == {"id": lead_id, "success": True, "errors": [], "created": True}
    assert created.headers["Location"] == f"{API}/sobjects/Lead/{lead_id}"
    updated = leads.upsert(f"RC_Visitor_Id__c/{VISITOR}", {"Phone": "+15551234567"},
                           raw_response=True)  # fmt: skip
    assert updated.status_code == 200
    assert updated.json() == {"id": lead_id, "success": True, "errors": [], "created": False}
    assert "Location" not in updated.headers
    assert fake.leads == {lead_id: {**LEAD, "Phone": "+15551234567", "RC_Visitor_Id__c": VISITOR}}
    assert leads.api_usage["api-usage"] == (2, 5000)  # Sforce-Limit-Info parsed


def test_task_create_then_update(fake: FakeSalesforce) -> None:
    sf = login(fake)
    lead_id = (
        _sobject(sf, "Lead")
        .upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD, raw_response=True)
        .json()["id"]
    )
    task = _sobject(sf, "Task").create({"WhoId": lead_id, "Subject": "Chat", "Status": "Completed"})
    task_id = task["id"]
    assert task == {"id": task_id, "success": True, "errors": []}
    assert fake.requests("POST", f"{API}/sobjects/Task/")  # the library's trailing slash
    assert _answer(fake, f"{API}/sobjects/Task/").headers["Location"] == (
        f"{API}/sobjects/Task/{task_id}"
    )
    assert _sobject(sf, "Task").update(task_id, {"Description": "the transcript"}) == 204
    assert fake.tasks[task_id]["Description"] == "the transcript"


def _composite(lead: dict[str, Any], task: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "PATCH", "url": f"{API}/sobjects/Lead/RC_Visitor_Id__c/{VISITOR}",
             "referenceId": "lead", "body": lead},
            {"method": "POST", "url": f"{API}/sobjects/Task", "referenceId": "task",
             "body": task or {"WhoId": "@{lead.id}", "Subject": "Chat"}},
        ],
    }  # fmt: skip


def test_a_composite_with_all_or_none(fake: FakeSalesforce) -> None:
    sf = login(fake)
    lead, task = _post_composite(sf, _composite(LEAD))["compositeResponse"]
    assert (lead["referenceId"], lead["httpStatusCode"]) == ("lead", 201)
    assert lead["httpHeaders"] == {"Location": f"{API}/sobjects/Lead/{lead['body']['id']}"}
    assert (task["referenceId"], task["httpStatusCode"]) == ("task", 201)
    assert task["httpHeaders"] == {"Location": f"{API}/sobjects/Task/{task['body']['id']}"}
    assert fake.tasks[task["body"]["id"]]["WhoId"] == lead["body"]["id"]


def test_a_failed_all_or_none_composite_answers_the_others_as_rolled_back(
    fake: FakeSalesforce,
) -> None:
    sf = login(fake)
    fake.add_validation_rule("Task", "Subject must name the chat queue", ["Subject"])
    answer = _post_composite(sf, _composite(LEAD))
    lead, task = answer["compositeResponse"]
    assert lead == {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": "lead",
    }
    assert task["httpStatusCode"] == 400
    assert task["body"] == [
        {
            "message": "Subject must name the chat queue",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Subject"],
        }
    ]
    assert (fake.leads, fake.tasks) == ({}, {})


def test_a_composite_failing_first_halts_the_rest(fake: FakeSalesforce) -> None:
    sf = login(fake)
    answer = _post_composite(sf, _composite({"LastName": "Doe"}))
    lead, task = answer["compositeResponse"]
    assert (lead["httpStatusCode"], lead["body"][0]["errorCode"]) == (400, "REQUIRED_FIELD_MISSING")
    assert (task["httpStatusCode"], task["body"][0]["errorCode"]) == (400, "PROCESSING_HALTED")
    assert (fake.leads, fake.tasks) == ({}, {})


# --- the error switches ------------------------------------------------------------------------


def test_an_expired_session_is_renewed_by_the_library(fake: FakeSalesforce) -> None:
    sf = login(fake)
    fake.expire_sessions()
    assert _sobject(sf, "Lead").upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD) == 201
    assert fake.tokens_issued == 2
    assert sf.session_id == "00D5g000004ABCD!token2"


def test_an_expired_session_without_credentials_raises_expired_session(
    fake: FakeSalesforce,
) -> None:
    token = login(fake).session_id
    sf = Salesforce(session_id=token, instance_url=fake.base_url, version="62.0",
                    session=_session(fake))  # fmt: skip
    fake.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as exc:
        _sobject(sf, "Lead").upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD)
    assert exc.value.status == 401
    assert _content(exc) == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_the_daily_limit_is_a_refused_request(fake: FakeSalesforce) -> None:
    sf = login(fake)
    fake.exhaust_daily_limit()
    with pytest.raises(SalesforceRefusedRequest) as exc:
        _sobject(sf, "Lead").upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD)
    assert exc.value.status == 403
    assert _errors(exc) == ["REQUEST_LIMIT_EXCEEDED"]
    with pytest.raises(SalesforceRefusedRequest) as exc:
        _post_composite(sf, _composite(LEAD))
    assert _errors(exc) == ["REQUEST_LIMIT_EXCEEDED"]


def test_a_required_field_missing_is_a_malformed_request(fake: FakeSalesforce) -> None:
    sf = login(fake)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        _sobject(sf, "Lead").upsert(f"RC_Visitor_Id__c/{VISITOR}", {"LastName": "Doe"})
    assert _content(exc) == [
        {
            "message": "Required fields are missing: [Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Company"],
        }
    ]


def test_a_validation_rule_is_a_malformed_request(fake: FakeSalesforce) -> None:
    sf = login(fake)
    fake.add_validation_rule("Lead", "Email or Phone is required")
    with pytest.raises(SalesforceMalformedRequest) as exc:
        _sobject(sf, "Lead").upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD)
    assert _content(exc) == [
        {
            "message": "Email or Phone is required",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": [],
        }
    ]


def test_bad_task_fields_are_malformed_requests(fake: FakeSalesforce) -> None:
    sf = login(fake)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        _sobject(sf, "Task").create({"WhoId": "00Q000000000000", "Subject": "Chat"})
    assert _errors(exc) == ["FIELD_INTEGRITY_EXCEPTION"]
    lead_id = (
        _sobject(sf, "Lead")
        .upsert(f"RC_Visitor_Id__c/{VISITOR}", LEAD, raw_response=True)
        .json()["id"]
    )
    with pytest.raises(SalesforceMalformedRequest) as exc:
        _sobject(sf, "Task").create({"WhoId": lead_id, "Description": "x" * 32_001})
    assert _errors(exc) == ["STRING_TOO_LONG"]
    assert fake.tasks == {}


def test_unknown_records_and_fields_are_not_found(fake: FakeSalesforce) -> None:
    sf = login(fake)
    with pytest.raises(SalesforceResourceNotFound) as exc:
        _sobject(sf, "Task").update("00T5g00000ZZZZZZZZ", {"Subject": "Chat"})
    assert _errors(exc) == ["NOT_FOUND"]
    with pytest.raises(SalesforceResourceNotFound) as exc:
        _sobject(sf, "Lead").upsert(f"Not_A_Field__c/{VISITOR}", LEAD)
    assert _errors(exc) == ["NOT_FOUND"]
    assert json.loads(json.dumps(_content(exc)))[0]["message"].endswith("Not_A_Field__c")
