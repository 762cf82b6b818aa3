"""HubSpot's official Python client (``hubspot-api-client``) as the judge of ``FakeHubSpot``.

Every call the adapter makes (contacts batch upsert by email, note create and update, owners by
email) and every error switch of the fake is driven through the vendor client, which must
deserialise the answers into its own models and raise the exceptions it raises against the real
service. The client is built with ``client_side_validation=True`` so that its models enforce the
fields HubSpot's OpenAPI spec marks required (``createdAt`` on objects and owners, ``category``,
``correlationId`` and ``message`` on errors); by default they accept anything.

The host: ``hubspot.HubSpot`` keeps a config dict and builds a fresh ``Configuration`` and
``ApiClient`` on every ``client.crm.contacts.batch_api``-style access (``DiscoveryBase``), so setting
``....api_client.configuration.host`` on one of them is lost on the next access; the ``host`` keyword
goes into that dict and is applied (``setattr(configuration, "host", ...)``) to every API object.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

hubspot = pytest.importorskip("hubspot")

from hubspot.crm import contacts, owners  # noqa: E402
from hubspot.crm.objects import notes  # noqa: E402

from omnihook.receiver.crm.testing import FakeHubSpot  # noqa: E402

OWNER_EMAIL = "emma@support.example.com"


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeHubSpot:
    made = FakeHubSpot(httpserver)
    made.owners[OWNER_EMAIL] = "77"
    return made


def client_for(fake: FakeHubSpot, token: str | None = None) -> Any:
    return hubspot.HubSpot(
        access_token=token or fake.token, host=fake.base_url, client_side_validation=True
    )


@pytest.fixture
def client(fake: FakeHubSpot) -> Any:
    return client_for(fake)


def upsert_input(email: str, **properties: str) -> Any:
    return contacts.SimplePublicObjectBatchInputUpsert(
        id=email, id_property="email", properties={"email": email, **properties}
    )


def upsert(client: Any, *inputs: Any) -> Any:
    batch = contacts.BatchInputSimplePublicObjectBatchInputUpsert(inputs=list(inputs))
    return client.crm.contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=batch
    )


def create_note(client: Any, contact_id: str, body: str = "transcript") -> Any:
    association = notes.PublicAssociationsForObject(
        to=notes.PublicObjectId(id=contact_id),
        types=[
            notes.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=202)
        ],
    )
    note = notes.SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2025-03-14T09:36:00Z", "hs_note_body": body},
        associations=[association],
    )
    return client.crm.objects.notes.basic_api.create(simple_public_object_input_for_create=note)


def error_model(module: Any, exc: Any) -> Any:
    """The error body as the client's own ``Error`` model (required fields enforced)."""
    configuration = module.Configuration()
    configuration.client_side_validation = True
    api_client = module.ApiClient(configuration)
    return api_client.deserialize(SimpleNamespace(data=exc.body), "Error")


# -- every call the adapter makes, through the vendor client -----------------------------------


def test_contact_upsert_by_email_inserts_then_updates(client: Any, fake: FakeHubSpot) -> None:
    first = upsert(client, upsert_input("jane.doe@example.com", firstname="Jane"))
    assert isinstance(first, contacts.BatchResponseSimplePublicUpsertObject)
    assert first.status == "COMPLETE"
    [inserted] = first.results
    assert isinstance(inserted, contacts.SimplePublicUpsertObject)
    assert inserted.new is True
    assert isinstance(inserted.created_at, datetime)
    assert isinstance(inserted.updated_at, datetime)
    assert inserted.properties == {"email": "jane.doe@example.com", "firstname": "Jane"}

    second = upsert(client, upsert_input("jane.doe@example.com", lastname="Doe"))
    [updated] = second.results
    assert updated.new is False
    assert updated.id == inserted.id == fake.contacts["jane.doe@example.com"]["id"]
    assert updated.created_at == inserted.created_at
    assert updated.properties == {
        "email": "jane.doe@example.com",
        "firstname": "Jane",
        "lastname": "Doe",
    }
    assert list(fake.contacts) == ["jane.doe@example.com"]


def test_a_batch_of_contacts_keyed_by_email_is_upserted_whole(
    client: Any, fake: FakeHubSpot
) -> None:
    upsert(client, upsert_input("jane.doe@example.com"))
    answer = upsert(client, upsert_input("jane.doe@example.com"), upsert_input("john@example.com"))
    assert answer.status == "COMPLETE"
    assert {r.properties["email"]: r.new for r in answer.results} == {
        "jane.doe@example.com": False,
        "john@example.com": True,
    }
    assert sorted(fake.contacts) == ["jane.doe@example.com", "john@example.com"]


def test_an_invalid_email_fails_the_whole_batch(client: Any, fake: FakeHubSpot) -> None:
    with pytest.raises(contacts.ApiException) as caught:
        upsert(client, upsert_input("good@example.com"), upsert_input("not-an-email"))
    assert caught.value.status == 400
    assert error_model(contacts, caught.value).category == "VALIDATION_ERROR"
    assert fake.contacts == {}


def test_duplicate_emails_in_one_batch_are_refused(client: Any, fake: FakeHubSpot) -> None:
    with pytest.raises(contacts.ApiException) as caught:
        upsert(client, upsert_input("jane.doe@example.com"), upsert_input("jane.doe@example.com"))
    assert caught.value.status == 400
    assert "Duplicate IDs" in error_model(contacts, caught.value).message
    assert fake.contacts == {}


def test_note_create_then_update_in_place(client: Any, fake: FakeHubSpot) -> None:
    [contact] = upsert(client, upsert_input("jane.doe@example.com")).results
    created = create_note(client, contact.id, "first transcript")
    assert isinstance(created, notes.SimplePublicObject)
    assert created.properties["hs_note_body"] == "first transcript"
    assert fake.notes[created.id]["associations"] == [
        {
            "to": {"id": contact.id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }
    ]

    update = notes.SimplePublicObjectInput(properties={"hs_note_body": "edited transcript"})
    updated = client.crm.objects.notes.basic_api.update(
        note_id=created.id, simple_public_object_input=update
    )
    assert isinstance(updated, notes.SimplePublicObject)
    assert updated.id == created.id
    assert updated.created_at == created.created_at  # the PATCH answer carries createdAt
    assert updated.updated_at >= created.updated_at
    assert updated.archived is False
    assert updated.properties["hs_note_body"] == "edited transcript"
    assert updated.properties["hs_timestamp"] == "2025-03-14T09:36:00Z"
    assert list(fake.notes) == [created.id]


def test_updating_an_unknown_note_is_not_found(client: Any) -> None:
    update = notes.SimplePublicObjectInput(properties={"hs_note_body": "x"})
    with pytest.raises(notes.exceptions.NotFoundException) as caught:
        client.crm.objects.notes.basic_api.update(
            note_id="424242", simple_public_object_input=update
        )
    assert caught.value.status == 404
    assert error_model(notes, caught.value).category == "OBJECT_NOT_FOUND"


def test_owners_are_listed_by_email(client: Any) -> None:
    page = client.crm.owners.owners_api.get_page(email=OWNER_EMAIL)
    assert isinstance(page, owners.CollectionResponsePublicOwnerForwardPaging)
    [owner] = page.results
    assert isinstance(owner, owners.PublicOwner)
    assert (owner.id, owner.email, owner.type, owner.archived) == (
        "77",
        OWNER_EMAIL,
        "PERSON",
        False,
    )
    assert isinstance(owner.created_at, datetime)
    assert isinstance(owner.updated_at, datetime)
    assert client.crm.owners.owners_api.get_page(email="nobody@example.com").results == []


# -- every error switch, on every call --------------------------------------------------------

Call = Callable[[Any], Any]

CALLS: dict[str, tuple[Any, Call]] = {
    "contacts upsert": (contacts, lambda c: upsert(c, upsert_input("jane.doe@example.com"))),
    "note create": (notes, lambda c: create_note(c, "1")),
    "note update": (
        notes,
        lambda c: c.crm.objects.notes.basic_api.update(
            note_id="1", simple_public_object_input=notes.SimplePublicObjectInput(properties={})
        ),
    ),
    "owners": (owners, lambda c: c.crm.owners.owners_api.get_page(email=OWNER_EMAIL)),
}


def is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("policy", ["TEN_SECONDLY_ROLLING", "DAILY"])
def test_rate_limit_next_is_hubspots_429(
    client: Any, fake: FakeHubSpot, call: str, policy: str
) -> None:
    module, make_call = CALLS[call]
    fake.rate_limit_next(policy=policy)
    with pytest.raises(module.ApiException) as caught:
        make_call(client)
    error = caught.value
    assert type(error) is module.ApiException  # not one of the 401/403/404/5xx subclasses
    assert error.status == 429
    assert error.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert error.headers["X-HubSpot-RateLimit-Max"] == str(fake.RATE_MAX)
    assert error.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == str(fake.INTERVAL_MS)
    assert error.headers["Content-Type"].startswith("application/json")
    body = json.loads(error.body)
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == policy
    assert policy.lower() in body["message"]
    assert is_uuid(body["correlationId"])
    if call == "contacts upsert":  # the switch is used up: the next call goes through
        assert make_call(client).status == "COMPLETE"


@pytest.mark.parametrize("call", CALLS)
def test_a_revoked_token_is_hubspots_401(client: Any, fake: FakeHubSpot, call: str) -> None:
    module, make_call = CALLS[call]
    fake.revoke_token()
    with pytest.raises(module.exceptions.UnauthorizedException) as caught:
        make_call(client)
    assert caught.value.status == 401
    error = error_model(module, caught.value)
    assert error.category == "INVALID_AUTHENTICATION"
    assert error.message.startswith("Authentication credentials not found.")
    assert is_uuid(error.correlation_id)


def test_a_wrong_token_is_hubspots_401(fake: FakeHubSpot) -> None:
    with pytest.raises(contacts.exceptions.UnauthorizedException):
        upsert(client_for(fake, "pat-na1-some-other-token"), upsert_input("jane.doe@example.com"))
    assert fake.contacts == {}


@pytest.mark.parametrize("call", ["contacts upsert", "note create", "note update"])
def test_reject_next_is_hubspots_400_validation_error(
    client: Any, fake: FakeHubSpot, call: str
) -> None:
    module, make_call = CALLS[call]
    fake.reject_next('Property "plan" does not exist')
    with pytest.raises(module.ApiException) as caught:
        make_call(client)
    assert type(caught.value) is module.ApiException
    assert caught.value.status == 400
    error = error_model(module, caught.value)
    assert error.category == "VALIDATION_ERROR"
    assert error.message == 'Property "plan" does not exist'
    assert is_uuid(error.correlation_id)
    assert "X-HubSpot-RateLimit-Remaining" in caught.value.headers
