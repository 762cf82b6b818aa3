"""Zoho's official Python SDK (``zohocrmsdk8-0``) as the judge of :class:`FakeZoho`.

The SDK is driven against the fake for every call the adapter makes (refresh-token OAuth, upsert
insert then update, note create then update) and every switch the fake offers; each answer must
parse into the wrappers the SDK would build from the real service. The environment is a
``DataCenter.Environment`` on the fake's URL; token and field-metadata files go to ``tmp_path``.
``find_user=False``: the adapter never asks who the user is (``GET /crm/v8/users``), so neither
does the SDK here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api import ParameterMap  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api import fields as zfields
from zohocrmsdk.src.com.zoho.crm.api import notes as znotes
from zohocrmsdk.src.com.zoho.crm.api import record as zrecord
from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api.modules import MinifiedModule  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig  # type: ignore[import-untyped]
from zohocrmsdk.src.com.zoho.crm.api.util import Choice  # type: ignore[import-untyped]

from omnihook.receiver.crm.testing import FakeZoho


@pytest.fixture
def zoho(httpserver: HTTPServer) -> FakeZoho:
    return FakeZoho(httpserver)


def _initialise(zoho: FakeZoho, tmp_path: Path, refresh_token: str | None = None) -> None:
    environment = DataCenter.Environment(
        zoho.base_url, f"{zoho.base_url}/oauth/v2/token", zoho.base_url
    )
    token = OAuthToken(
        client_id=zoho.client_id,
        client_secret=zoho.client_secret,
        refresh_token=refresh_token or zoho.refresh_token,
        find_user=False,
    )
    resources = tmp_path / "resources"
    resources.mkdir(exist_ok=True)
    Initializer.initialize(
        environment=environment,
        token=token,
        store=FileStore(str(tmp_path / "sdk_tokens.txt")),
        sdk_config=SDKConfig(auto_refresh_fields=False, pick_list_validation=True),
        resource_path=str(resources),
    )


@pytest.fixture
def sdk(zoho: FakeZoho, tmp_path: Path) -> Iterator[FakeZoho]:
    """The SDK initialised against the fake (one token refresh at the fake's accounts URL)."""
    _initialise(zoho, tmp_path)
    yield zoho
    Initializer.initializer = None


def _value(choice: Any) -> Any:
    return choice.get_value() if isinstance(choice, Choice) else choice


def _person(**fields: Any) -> Any:
    record = zrecord.Record()
    for key, value in fields.items():
        record.add_key_value(key, value)
    return record


def _upsert(module: str, *records: Any, checks: tuple[str, ...] = ("Email",)) -> Any:
    body = zrecord.BodyWrapper()
    body.set_data(list(records))
    body.set_duplicate_check_fields(list(checks))
    body.set_trigger(["workflow"])
    return zrecord.RecordOperations(module).upsert_records(body)


def _note(parent_module: str, parent_id: str, title: str, content: str) -> Any:
    note = znotes.Note()
    note.set_note_title(title)
    note.set_note_content(content)
    parent = znotes.ParentId()
    minified = MinifiedModule()
    minified.set_api_name(parent_module)
    parent.set_module(minified)
    parent.set_id(int(parent_id))  # the SDK's ParentId.id is a Long: sent as a JSON number
    note.set_parent_id(parent)
    body = znotes.BodyWrapper()
    body.set_data([note])
    return body


def _one(response: Any, wrapper: type[Any]) -> Any:
    assert response is not None
    answer = response.get_object()
    assert isinstance(answer, wrapper), answer
    [result] = answer.get_data()
    return result


def test_token_refresh_at_the_accounts_url_as_the_sdk_sends_it(sdk: FakeZoho) -> None:
    [token_request] = sdk.requests("POST", "/oauth/v2/token")
    assert token_request.form.to_dict() == {
        "grant_type": "refresh_token",
        "refresh_token": sdk.refresh_token,
        "client_id": sdk.client_id,
        "client_secret": sdk.client_secret,
    }
    token = Initializer.get_initializer().token
    assert token.get_access_token() == "1000.access.1"
    assert token.get_api_domain() == sdk.base_url  # the answer's api_domain is taken


def test_a_bad_refresh_token_is_the_sdks_invalid_token_error(
    zoho: FakeZoho, tmp_path: Path
) -> None:
    with pytest.raises(SDKException) as raised:
        _initialise(zoho, tmp_path, refresh_token="1000.revoked")
    Initializer.initializer = None
    assert raised.value.code == "INVALID TOKEN ERROR"  # Constants.INVALID_TOKEN_ERROR
    assert raised.value.error_message == "invalid_code"  # HTTP 200 {"error": "invalid_code"}


@pytest.mark.parametrize("module", ["Leads", "Contacts", "Notes"])
def test_field_metadata_parses_into_the_sdks_field_wrappers(sdk: FakeZoho, module: str) -> None:
    params = ParameterMap()
    params.add(zfields.GetFieldsParam.module, module)
    response = zfields.FieldsOperations().get_fields(params)
    assert response.get_status_code() == 200
    answer = response.get_object()
    assert isinstance(answer, zfields.ResponseWrapper), answer
    by_name = {f.get_api_name(): f for f in answer.get_fields()}
    if module == "Notes":
        assert by_name["Parent_Id"].get_data_type() == "lookup"
        assert {"Note_Title", "Note_Content"} <= set(by_name)
    else:
        assert by_name["Last_Name"].get_system_mandatory() is True
        assert by_name["Email"].get_data_type() == "email"
        assert {"First_Name", "Phone", "Lead_Source"} <= set(by_name)
        values = [v.get_display_value() for v in by_name["Lead_Source"].get_pick_list_values()]
        assert "Chat" in values


def test_field_metadata_of_an_unknown_module_is_an_api_exception(sdk: FakeZoho) -> None:
    params = ParameterMap()
    params.add(zfields.GetFieldsParam.module, "Nonsense")
    response = zfields.FieldsOperations().get_fields(params)
    answer = response.get_object()
    assert isinstance(answer, zfields.APIException), answer
    assert (_value(answer.get_code()), response.get_status_code()) == ("INVALID_MODULE", 400)


@pytest.mark.parametrize("module", ["Leads", "Contacts"])
def test_upsert_inserts_then_updates_on_the_duplicate_check_field(
    sdk: FakeZoho, module: str
) -> None:
    source = {"Lead_Source": Choice("Chat")} if module == "Leads" else {}
    jane = {"Last_Name": "Doe", "First_Name": "Jane", "Email": "jane.doe@example.com"}
    response = _upsert(module, _person(**jane, **source))
    assert response.get_status_code() == 200
    inserted = _one(response, zrecord.ActionWrapper)
    assert isinstance(inserted, zrecord.SuccessResponse), inserted
    assert (_value(inserted.get_code()), _value(inserted.get_status())) == ("SUCCESS", "success")
    assert _value(inserted.get_message()) == "record added"
    record_id = str(inserted.get_details()["id"])
    assert sdk.requests("GET", "/crm/v8/settings/fields")[0].args["module"] == module
    upsert = sdk.requests("POST", f"/crm/v8/{module}/upsert")[0]
    assert "Content-Type" not in upsert.headers  # as the SDK sends it: Zoho reads the JSON anyway
    assert upsert.headers["Authorization"] == "Zoho-oauthtoken 1000.access.1"

    response = _upsert(module, _person(**{**jane, "Phone": "+15551234567"}))
    updated = _one(response, zrecord.ActionWrapper)
    assert isinstance(updated, zrecord.SuccessResponse), updated
    assert _value(updated.get_message()) == "record updated"
    assert str(updated.get_details()["id"]) == record_id
    assert sdk.records[module][record_id]["Phone"] == "+15551234567"
    assert len(sdk.records[module]) == 1


def test_note_created_with_a_numeric_parent_id_then_updated(sdk: FakeZoho) -> None:
    created = _one(_upsert("Leads", _person(Last_Name="Doe", Email="j@example.com")),
                   zrecord.ActionWrapper)  # fmt: skip
    lead_id = str(created.get_details()["id"])

    response = znotes.NotesOperations().create_notes(_note("Leads", lead_id, "Chat", "first"))
    assert response.get_status_code() == 201
    note = _one(response, znotes.ActionWrapper)
    assert isinstance(note, znotes.SuccessResponse), note
    assert (_value(note.get_code()), _value(note.get_message())) == ("SUCCESS", "record added")
    note_id = str(note.get_details()["id"])
    [sent] = sdk.requests("POST", "/crm/v8/Notes")
    assert isinstance(sent.get_json(force=True)["data"][0]["Parent_Id"]["id"], int)
    assert sdk.notes[note_id]["Note_Content"] == "first"

    update = _note("Leads", lead_id, "Chat", "edited")
    response = znotes.NotesOperations().update_note(int(note_id), update)
    assert response.get_status_code() == 200
    updated = _one(response, znotes.ActionWrapper)
    assert isinstance(updated, znotes.SuccessResponse), updated
    assert (_value(updated.get_message()), str(updated.get_details()["id"])) == (
        "record updated",
        note_id,
    )
    assert sdk.notes[note_id]["Note_Content"] == "edited"


def test_a_note_on_an_unknown_parent_is_invalid_data(sdk: FakeZoho) -> None:
    response = znotes.NotesOperations().create_notes(_note("Leads", "1", "Chat", "text"))
    assert response.get_status_code() == 400
    error = _one(response, znotes.ActionWrapper)
    assert isinstance(error, znotes.APIException), error
    assert (_value(error.get_code()), error.get_details()) == (
        "INVALID_DATA",
        {"api_name": "Parent_Id"},
    )


def test_updating_an_unknown_note_is_invalid_data(sdk: FakeZoho) -> None:
    response = znotes.NotesOperations().update_note(
        4150868000000400999, _note("Leads", "1", "Chat", "text")
    )
    assert response.get_status_code() == 400
    error = _one(response, znotes.ActionWrapper)
    assert isinstance(error, znotes.APIException), error
    assert _value(error.get_code()) == "INVALID_DATA"
    assert _value(error.get_message()) == "the id given seems to be invalid"


def test_an_expired_access_token_is_an_invalid_token_api_exception(sdk: FakeZoho) -> None:
    _upsert("Leads", _person(Last_Name="Doe", Email="j@example.com"))  # fields fetched, cached
    sdk.expire_access_tokens()
    response = _upsert("Leads", _person(Last_Name="Doe", Email="j@example.com"))
    assert response.get_status_code() == 401
    error = response.get_object()
    assert isinstance(error, zrecord.APIException), error
    assert (_value(error.get_code()), _value(error.get_status())) == ("INVALID_TOKEN", "error")
    assert _value(error.get_message()) == "invalid oauth token"


def test_a_rate_limit_is_a_too_many_requests_api_exception(sdk: FakeZoho) -> None:
    _upsert("Leads", _person(Last_Name="Doe", Email="j@example.com"))
    sdk.rate_limit_next()
    response = _upsert("Leads", _person(Last_Name="Doe", Email="j@example.com"))
    assert response.get_status_code() == 429
    error = response.get_object()
    assert isinstance(error, zrecord.APIException), error
    assert _value(error.get_code()) == "TOO_MANY_REQUESTS"
    # the SDK keeps only the detail keys it declares: "duration" is not one of them
    # the limit was one call: the next goes through
    ok = _one(_upsert("Leads", _person(Last_Name="Doe", Email="j@example.com")),
              zrecord.ActionWrapper)  # fmt: skip
    assert isinstance(ok, zrecord.SuccessResponse)


def test_a_rejected_record_is_a_per_record_api_exception(sdk: FakeZoho) -> None:
    sdk.reject_next("INVALID_DATA", "invalid data", "Phone")
    response = _upsert("Leads", _person(Last_Name="Doe", Email="j@example.com", Phone="x"))
    assert response.get_status_code() == 400
    error = _one(response, zrecord.ActionWrapper)
    assert isinstance(error, zrecord.APIException), error
    assert (_value(error.get_code()), _value(error.get_status())) == ("INVALID_DATA", "error")
    assert (_value(error.get_message()), error.get_details()) == (
        "invalid data",
        {"api_name": "Phone"},
    )


def test_a_record_without_last_name_is_mandatory_not_found(sdk: FakeZoho) -> None:
    response = _upsert("Leads", _person(Email="j@example.com"))
    assert response.get_status_code() == 400
    error = _one(response, zrecord.ActionWrapper)
    assert isinstance(error, zrecord.APIException), error
    assert _value(error.get_code()) == "MANDATORY_NOT_FOUND"
    assert error.get_details() == {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"}
