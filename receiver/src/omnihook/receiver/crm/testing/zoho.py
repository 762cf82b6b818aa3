"""A local fake of the Zoho CRM API: see :mod:`omnihook.receiver.crm.testing`."""

from __future__ import annotations

import json
from typing import Any

from werkzeug import Request, Response

from ._base import HTTPServer, _Fake, _json, _now

__all__ = ["FakeZoho"]


class FakeZoho(_Fake):
    """Zoho CRM v8 with its accounts server on the same port: refresh-token OAuth, module upserts
    with duplicate checks, Notes. ``api_domain`` points back at this server.

    Switches: :meth:`expire_access_tokens` (401 ``INVALID_TOKEN`` until a refresh),
    ``refresh_token`` changed (HTTP 200 ``{"error": "invalid_code"}``), :meth:`rate_limit_next`,
    :meth:`reject_next` (a per-record error); a record without ``Last_Name`` gets
    ``MANDATORY_NOT_FOUND`` as the real API answers.

    As Zoho does, bodies are read as JSON whatever their ``Content-Type`` (its SDK and curl samples
    send none), a note's ``Parent_Id.id`` may be a number or a string, and
    ``GET /crm/v8/settings/fields?module=`` serves the field metadata of Leads, Contacts and Notes
    (the official SDK fetches it before its first record call).
    """

    def __init__(
        self,
        server: HTTPServer,
        client_id: str = "1000.CLIENTID",
        client_secret: str = "client-secret",
        refresh_token: str = "1000.refresh.token",
    ) -> None:
        super().__init__(server)
        self.client_id, self.client_secret, self.refresh_token = (
            client_id,
            client_secret,
            refresh_token,
        )
        self.records: dict[str, dict[str, dict[str, Any]]] = {"Leads": {}, "Contacts": {}}
        """By module, then record id: the record's fields."""
        self.notes: dict[str, dict[str, Any]] = {}
        self.tokens_issued = 0
        self._valid_tokens: set[str] = set()
        self._rate_limits = 0
        self._rejections: list[dict[str, Any]] = []
        self._route("POST", r"^/oauth/v2/token$", self._token)
        self._route("POST", r"^/crm/v8/(Leads|Contacts)/upsert$", self._upsert)
        self._route("POST", r"^/crm/v8/Notes$", self._create_note)
        self._route("PUT", r"^/crm/v8/Notes/(\d+)$", self._update_note)
        self._route("GET", r"^/crm/v8/settings/fields$", self._fields)

    def expire_access_tokens(self) -> None:
        self._valid_tokens.clear()

    def rate_limit_next(self, times: int = 1) -> None:
        self._rate_limits += times

    def reject_next(
        self, code: str = "INVALID_DATA", message: str = "invalid data", api_name: str = "Email"
    ) -> None:
        """The next upserted record fails with this per-record error."""
        self._rejections.append({"code": code, "details": {"api_name": api_name}, "message": message,
                                 "status": "error"})  # fmt: skip

    def _token(self, request: Request) -> Response:
        form = request.form
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return _json({"error": "invalid_client"})
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return _json({"error": "invalid_code"})  # yes: HTTP 200
        self.tokens_issued += 1
        token = f"1000.access.{self.tokens_issued}"
        self._valid_tokens.add(token)
        return _json({"access_token": token, "scope": "ZohoCRM.modules.ALL", "api_domain": self.base_url,
                      "token_type": "Bearer", "expires_in": 3600})  # fmt: skip

    def _gate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if (
            not header.startswith("Zoho-oauthtoken ")
            or header.split(" ", 1)[1] not in self._valid_tokens
        ):
            return _json({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token",
                          "status": "error"}, 401)  # fmt: skip
        if self._rate_limits:
            self._rate_limits -= 1
            return _json({"code": "TOO_MANY_REQUESTS", "details": {"duration": "1 minute"},
                          "message": "The number of requests exceeded the limit", "status": "error"}, 429)  # fmt: skip
        return None

    def _upsert(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        module = request.path.split("/")[3]
        body = _body(request)
        checks = body.get("duplicate_check_fields") or ["Email"]
        results: list[dict[str, Any]] = []
        for index, record in enumerate(body.get("data", [])):
            if self._rejections:
                results.append(self._rejections.pop(0))
                continue
            if not record.get("Last_Name"):
                results.append({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name",
                                "json_path": f"$.data[{index}].Last_Name"}, "message": "required field not found",
                                "status": "error"})  # fmt: skip
                continue
            store = self.records[module]
            duplicate: str | None
            match = next((rid for rid, known in store.items()
                          if any(record.get(f) and known.get(f) == record.get(f) for f in checks)), None)  # fmt: skip
            if match is None:
                match = str(4150868000000376000 + next(self._ids))
                store[match] = {}
                action, message, duplicate = "insert", "record added", None
            else:
                action, message = "update", "record updated"
                duplicate = next(
                    f for f in checks if record.get(f) and store[match].get(f) == record.get(f)
                )
            store[match].update(record)
            results.append({"code": "SUCCESS", "duplicate_field": duplicate, "action": action,
                            "details": {"Modified_Time": _now(), "id": match, "Created_Time": _now()},
                            "message": message, "status": "success"})  # fmt: skip
        failed = sum(r["status"] == "error" for r in results)
        status = 200 if not failed else 400 if failed == len(results) else 207
        return _json({"data": results}, status)

    def _create_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        results: list[dict[str, Any]] = []
        for note in _body(request).get("data", []):
            parent = note.get("Parent_Id") or {}
            module = ((parent.get("module") or {}).get("api_name")) or ""
            if str(parent.get("id")) not in self.records.get(module, {}):
                results.append({"code": "INVALID_DATA", "details": {"api_name": "Parent_Id"},
                                "message": "the related id given seems to be invalid", "status": "error"})  # fmt: skip
                continue
            note_id = str(4150868000000400000 + next(self._ids))
            self.notes[note_id] = dict(note)
            results.append({"code": "SUCCESS", "details": {"id": note_id, "Created_Time": _now()},
                            "message": "record added", "status": "success"})  # fmt: skip
        return _json(
            {"data": results}, 201 if all(r["status"] == "success" for r in results) else 400
        )

    def _update_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        note_id = request.path.rsplit("/", 1)[1]
        if note_id not in self.notes:
            return _json({"data": [{"code": "INVALID_DATA", "details": {"id": note_id},
                                    "message": "the id given seems to be invalid", "status": "error"}]}, 400)  # fmt: skip
        self.notes[note_id].update((_body(request).get("data") or [{}])[0])
        return _json({"data": [{"code": "SUCCESS", "details": {"id": note_id, "Modified_Time": _now()},
                                "message": "record updated", "status": "success"}]})  # fmt: skip

    def _fields(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        module = request.args.get("module", "")
        if not module:
            return _json({"code": "REQUIRED_PARAM_MISSING", "details": {"param": "module"},
                          "message": "One of the expected parameter is missing", "status": "error"}, 400)  # fmt: skip
        if module not in _FIELDS:
            return _json({"code": "INVALID_MODULE", "details": {"resource_path_index": 0},
                          "message": "the module name given seems to be invalid", "status": "error"}, 400)  # fmt: skip
        return _json(
            {"fields": [_field(module, n, *spec) for n, spec in enumerate(_FIELDS[module])]}
        )


def _body(request: Request) -> dict[str, Any]:
    """The JSON body, whatever the ``Content-Type`` says (Zoho does not insist on one)."""
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_LEAD_SOURCES = ["-None-", "Advertisement", "Cold Call", "Employee Referral", "External Referral",
                 "Online Store", "Partner", "Public Relations", "Sales Email Alias", "Seminar Partner",
                 "Internal Seminar", "Trade Show", "Web Download", "Web Research", "Chat"]  # fmt: skip

# (api_name, field_label, data_type, json_type, system_mandatory, extra)
_PERSON: list[tuple[str, str, str, str, bool, dict[str, Any]]] = [
    ("Owner", "Owner", "ownerlookup", "jsonobject", False, {}),
    ("First_Name", "First Name", "text", "string", False, {"length": 40}),
    ("Last_Name", "Last Name", "text", "string", True, {"length": 80}),
    ("Email", "Email", "email", "string", False, {"length": 100, "unique": {"casesensitive": "0"}}),
    ("Phone", "Phone", "phone", "string", False, {"length": 30}),
    ("Lead_Source", "Lead Source", "picklist", "string", False, {"length": 120, "pick_list_values": [
        {"display_value": v, "actual_value": v, "reference_value": v, "sequence_number": i + 1,
         "type": "used", "id": str(4150868000000003000 + i)} for i, v in enumerate(_LEAD_SOURCES)]}),
    ("Created_Time", "Created Time", "datetime", "string", False, {"read_only": True}),
    ("Modified_Time", "Modified Time", "datetime", "string", False, {"read_only": True}),
]  # fmt: skip
_FIELDS: dict[str, list[tuple[str, str, str, str, bool, dict[str, Any]]]] = {
    "Leads": _PERSON,
    "Contacts": _PERSON,
    "Notes": [
        ("Owner", "Note Owner", "ownerlookup", "jsonobject", False, {}),
        ("Note_Title", "Note Title", "text", "string", False, {"length": 120}),
        ("Note_Content", "Note Content", "textarea", "string", False, {"length": 32000}),
        ("Parent_Id", "Parent ID", "lookup", "jsonobject", True, {}),
        ("Created_Time", "Created Time", "datetime", "string", False, {"read_only": True}),
        ("Modified_Time", "Modified Time", "datetime", "string", False, {"read_only": True}),
    ],
}


def _field(
    module: str, index: int, api_name: str, label: str, data_type: str, json_type: str,
    mandatory: bool, extra: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """One field in the shape of Zoho's Fields Metadata API (the keys the SDK reads)."""
    offset = {"Leads": 2000, "Contacts": 3000, "Notes": 4000}[module]
    field: dict[str, Any] = {
        "api_name": api_name, "field_label": label, "display_label": label, "data_type": data_type,
        "json_type": json_type, "system_mandatory": mandatory, "custom_field": False,
        "read_only": False, "visible": True, "id": str(4150868000000000000 + offset + index),
        "length": 120, "lookup": {}, "unique": {}, "pick_list_values": [],
    }  # fmt: skip
    field.update(extra)
    return field
