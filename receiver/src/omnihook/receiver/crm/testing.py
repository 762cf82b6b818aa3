"""Local fakes of the HubSpot, Zoho CRM and Salesforce APIs, for tests (yours and ours).

Each fake registers its endpoints on a pytest-httpserver ``HTTPServer`` and answers as the real
API documents (bodies, status codes, headers), keeping state per key: an upsert inserts, then
updates. Switches inject what is hard to get from a real account on demand: expired tokens,
validation errors, rate limits::

    def test_my_mapping(httpserver):
        hubspot = FakeHubSpot(httpserver)
        adapter = HubSpotAdapter(token=hubspot.token, base_url=hubspot.base_url)
        ...
        assert hubspot.contacts["jane@example.com"]["properties"]["firstname"] == "Jane"

Requires ``pytest-httpserver`` (``pip install omnihook-receiver[testing]``).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

try:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response
except ImportError as exc:  # pragma: no cover - only without the testing extra
    raise ImportError(
        "omnihook.receiver.crm.testing needs pytest-httpserver: pip install 'omnihook-receiver[testing]'"
    ) from exc

__all__ = ["FakeHubSpot", "FakeSalesforce", "FakeZoho"]

Handler = Callable[[Request], Response]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Fake:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _route(self, method: str, pattern: str, handler: Handler) -> None:
        self.server.expect_request(re.compile(pattern), method=method).respond_with_handler(handler)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The requests this server received, optionally of one method and/or path prefix."""
        return [r for r, _ in self.server.log
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))]  # fmt: skip


class FakeHubSpot(_Fake):
    """HubSpot CRM v3: contacts by email, notes, owners; a private-app ``token``.

    Switches: :meth:`revoke_token` (401), :meth:`rate_limit_next` (429 with HubSpot's body and
    rate headers), :meth:`reject_next` (400 ``VALIDATION_ERROR`` with the given message).
    """

    RATE_MAX = 100
    INTERVAL_MS = 10_000

    def __init__(
        self, server: HTTPServer, token: str = "pat-na1-test-token", prefix: str = "/crm/v3"
    ) -> None:
        super().__init__(server)
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}
        """By email: ``{"id", "properties"}``."""
        self.notes: dict[str, dict[str, Any]] = {}
        """By id: ``{"properties", "associations"}``."""
        self.owners: dict[str, str] = {}
        """Owner id by email; add entries to let the adapter find owners."""
        self.remaining = self.RATE_MAX
        self._revoked = False
        self._rate_limits: list[str] = []
        self._rejections: list[str] = []
        p = re.escape(prefix)
        self._route("POST", rf"^{p}/objects/contacts/batch/upsert$", self._upsert)
        self._route("POST", rf"^{p}/objects/notes$", self._create_note)
        self._route("PATCH", rf"^{p}/objects/notes/(\d+)$", self._update_note)
        self._route("GET", rf"^{p}/owners/?$", self._owners)

    def revoke_token(self) -> None:
        self._revoked = True

    def rate_limit_next(self, times: int = 1, policy: str = "TEN_SECONDLY_ROLLING") -> None:
        self._rate_limits += [policy] * times

    def reject_next(self, message: str = "Property values were not valid") -> None:
        self._rejections.append(message)

    def _headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.RATE_MAX),
            "X-HubSpot-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.INTERVAL_MS),
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "249000",
        }

    def _gate(self, request: Request) -> Response | None:
        if self._revoked or request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json({"status": "error", "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                          "correlationId": "a1b2", "category": "INVALID_AUTHENTICATION"}, 401)  # fmt: skip
        if self._rate_limits:
            policy = self._rate_limits.pop(0)
            return _json({"status": "error", "message": f"You have reached your {policy.lower()} limit.",
                          "errorType": "RATE_LIMIT", "correlationId": "c3d4", "policyName": policy},
                         429, {**self._headers(), "X-HubSpot-RateLimit-Remaining": "0"})  # fmt: skip
        self.remaining -= 1
        return None

    def _validation(self, message: str) -> Response:
        return _json({"status": "error", "message": message, "correlationId": "e5f6",
                      "category": "VALIDATION_ERROR"}, 400, self._headers())  # fmt: skip

    def _upsert(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        inputs = (request.get_json() or {}).get("inputs", [])
        if len(inputs) != 1 or inputs[0].get("idProperty") != "email":
            return self._validation(
                "Partial upserts are not supported when using email as idProperty."
            )
        if self._rejections:
            return self._validation(self._rejections.pop(0))
        email = str(inputs[0]["id"])
        if "@" not in email:
            return self._validation(
                f'Property values were not valid: [{{"isValid":false,"message":"Email address {email} is invalid","error":"INVALID_EMAIL","name":"email"}}]'
            )
        contact = self.contacts.get(email)
        new = contact is None
        if contact is None:
            contact = self.contacts[email] = {
                "id": str(500 + next(self._ids)),
                "properties": {},
                "createdAt": _now(),
            }
        contact["properties"].update(inputs[0].get("properties", {}))
        result = {"id": contact["id"], "new": new, "properties": contact["properties"],
                  "createdAt": contact["createdAt"], "updatedAt": _now(), "archived": False}  # fmt: skip
        return _json({"status": "COMPLETE", "results": [result], "startedAt": _now(), "completedAt": _now()},
                     200, self._headers())  # fmt: skip

    def _create_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = request.get_json() or {}
        properties = body.get("properties", {})
        if "hs_timestamp" not in properties:
            return self._validation('Property "hs_timestamp" is required.')
        if len(properties.get("hs_note_body", "")) > 65_536:
            return self._validation("hs_note_body is longer than 65536 characters.")
        contact_ids = {c["id"] for c in self.contacts.values()}
        for association in body.get("associations", []):
            if association["to"]["id"] not in contact_ids:
                return self._validation(f"No contact with id {association['to']['id']}.")
        note_id = str(9000 + next(self._ids))
        self.notes[note_id] = {
            "properties": dict(properties),
            "associations": body.get("associations", []),
        }
        return _json({"id": note_id, "properties": properties, "createdAt": _now(), "updatedAt": _now(),
                      "archived": False}, 201, self._headers())  # fmt: skip

    def _update_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        note_id = request.path.rsplit("/", 1)[1]
        if note_id not in self.notes:
            return _json({"status": "error", "message": "resource not found", "correlationId": "g7h8",
                          "category": "OBJECT_NOT_FOUND"}, 404, self._headers())  # fmt: skip
        self.notes[note_id]["properties"].update((request.get_json() or {}).get("properties", {}))
        return _json({"id": note_id, "properties": self.notes[note_id]["properties"], "updatedAt": _now(),
                      "archived": False}, 200, self._headers())  # fmt: skip

    def _owners(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        email = request.args.get("email")
        results = [{"id": owner_id, "email": address, "type": "PERSON"}
                   for address, owner_id in self.owners.items() if email in (None, address)]  # fmt: skip
        return _json({"results": results}, 200, self._headers())


class FakeZoho(_Fake):
    """Zoho CRM v8 with its accounts server on the same port: refresh-token OAuth, module upserts
    with duplicate checks, Notes. ``api_domain`` points back at this server.

    Switches: :meth:`expire_access_tokens` (401 ``INVALID_TOKEN`` until a refresh),
    ``refresh_token`` changed (HTTP 200 ``{"error": "invalid_code"}``), :meth:`rate_limit_next`,
    :meth:`reject_next` (a per-record error); a record without ``Last_Name`` gets
    ``MANDATORY_NOT_FOUND`` as the real API answers.
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
        body = request.get_json() or {}
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
        for note in (request.get_json() or {}).get("data", []):
            parent = note.get("Parent_Id") or {}
            module = ((parent.get("module") or {}).get("api_name")) or ""
            if parent.get("id") not in self.records.get(module, {}):
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
        self.notes[note_id].update((request.get_json() or {}).get("data", [{}])[0])
        return _json({"data": [{"code": "SUCCESS", "details": {"id": note_id, "Modified_Time": _now()},
                                "message": "record updated", "status": "success"}]})  # fmt: skip


class FakeSalesforce(_Fake):
    """A Salesforce org on its My Domain: client-credentials tokens, Lead upsert by one External-ID
    field, Tasks, composite requests (``allOrNone`` rolls back).

    Switches: :meth:`expire_sessions` (401 ``INVALID_SESSION_ID``), :meth:`exhaust_daily_limit`
    (403 ``REQUEST_LIMIT_EXCEEDED``), a Lead without ``LastName`` or ``Company`` gets
    ``REQUIRED_FIELD_MISSING`` as the real API answers.
    """

    API = "/services/data/v62.0"

    def __init__(
        self,
        server: HTTPServer,
        client_id: str = "3MVG9-consumer-key",
        client_secret: str = "consumer-secret",
        external_id_field: str = "RC_Visitor_Id__c",
    ) -> None:
        super().__init__(server)
        self.client_id, self.client_secret = client_id, client_secret
        self.external_id_field = external_id_field
        self.leads: dict[str, dict[str, Any]] = {}
        """By lead id: the fields."""
        self.tasks: dict[str, dict[str, Any]] = {}
        self.tokens_issued = 0
        self.api_usage = 0
        self._valid_tokens: set[str] = set()
        self._limit_exceeded = False
        self._route("POST", r"^/services/oauth2/token$", self._token)
        self._route("PATCH", rf"^{self.API}/sobjects/Lead/([^/]+)/(.+)$", self._lead_route)
        self._route("POST", rf"^{self.API}/sobjects/Task$", self._task_route)
        self._route("PATCH", rf"^{self.API}/sobjects/Task/([^/]+)$", self._task_route)
        self._route("POST", rf"^{self.API}/composite$", self._composite)

    def expire_sessions(self) -> None:
        self._valid_tokens.clear()

    def exhaust_daily_limit(self) -> None:
        self._limit_exceeded = True

    def lead_by_external_id(self, value: str) -> dict[str, Any] | None:
        return next(
            (lead for lead in self.leads.values() if lead.get(self.external_id_field) == value),
            None,
        )

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/5000"}

    def _token(self, request: Request) -> Response:
        form = request.form
        if (form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):  # fmt: skip
            return _json(
                {"error": "invalid_client", "error_description": "invalid client credentials"}, 400
            )
        self.tokens_issued += 1
        token = f"00D5g000004ABCD!token{self.tokens_issued}"
        self._valid_tokens.add(token)
        return _json({"access_token": token, "instance_url": self.base_url, "id": f"{self.base_url}/id/00D/005",
                      "token_type": "Bearer", "issued_at": "1700000000000", "signature": "sig=", "scope": "api"})  # fmt: skip

    def _gate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self._valid_tokens:
            return _json(
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
            )
        if self._limit_exceeded:
            return _json([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403,
                         self._limit_header())  # fmt: skip
        self.api_usage += 1
        return None

    def _lead_route(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        status, body = self._upsert_lead(request.path, request.get_json() or {})
        return _json(body, status, self._limit_header())

    def _task_route(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        status, body = self._save_task(request.method, request.path, request.get_json() or {})
        return _json(body, status, self._limit_header()) if status != 204 else Response(status=204)

    def _upsert_lead(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        field, value = path.split("/sobjects/Lead/", 1)[1].split("/", 1)
        value = unquote(value)
        if field != self.external_id_field:
            return 404, [
                {
                    "errorCode": "NOT_FOUND",
                    "message": f"Provided external ID field does not exist or is not accessible: {field}",
                }
            ]
        existing = next((lid for lid, lead in self.leads.items() if lead.get(field) == value), None)
        merged = {**(self.leads.get(existing, {}) if existing else {}), **body, field: value}
        missing = [name for name in ("LastName", "Company") if not merged.get(name)]
        if missing:
            return 400, [{"message": f"Required fields are missing: [{', '.join(missing)}]",
                          "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}]  # fmt: skip
        if existing is None:
            existing = f"00Q5g00000{next(self._ids):08d}"
            self.leads[existing] = merged
            return 201, {"id": existing, "success": True, "errors": [], "created": True}
        self.leads[existing] = merged
        return 200, {"id": existing, "success": True, "errors": [], "created": False}

    def _save_task(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "PATCH":
            task_id = path.rsplit("/", 1)[1]
            if task_id not in self.tasks:
                return 404, [
                    {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
                ]
            self.tasks[task_id].update(body)
            return 204, None
        if body.get("WhoId") not in self.leads:
            return 400, [
                {
                    "message": "Name ID: id value of incorrect type",
                    "errorCode": "FIELD_INTEGRITY_EXCEPTION",
                    "fields": ["WhoId"],
                }
            ]
        if len(body.get("Description", "")) > 32_000:
            return 400, [
                {
                    "message": "Description: data value too large",
                    "errorCode": "STRING_TOO_LONG",
                    "fields": ["Description"],
                }
            ]
        task_id = f"00T5g00000{next(self._ids):08d}"
        self.tasks[task_id] = dict(body)
        return 201, {"id": task_id, "success": True, "errors": []}

    def _composite(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = request.get_json() or {}
        snapshot = copy.deepcopy((self.leads, self.tasks))
        references: dict[str, Any] = {}
        responses: list[dict[str, Any]] = []
        failed = False
        for sub in body.get("compositeRequest", []):
            if failed and body.get("allOrNone"):
                responses.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}],
                                  "httpHeaders": {}, "httpStatusCode": 400, "referenceId": sub["referenceId"]})  # fmt: skip
                continue
            payload = json.loads(re.sub(r"@\{(\w+)\.id\}", lambda m: str(references.get(m.group(1), {}).get("id")),
                                        json.dumps(sub.get("body") or {})))  # fmt: skip
            if "/sobjects/Lead/" in sub["url"]:
                status, answer = self._upsert_lead(sub["url"], payload)
            else:
                status, answer = self._save_task(sub["method"], sub["url"], payload)
            failed = failed or status >= 300
            references[sub["referenceId"]] = answer if isinstance(answer, dict) else {}
            responses.append({"body": answer, "httpHeaders": {}, "httpStatusCode": status,
                              "referenceId": sub["referenceId"]})  # fmt: skip
        if failed and body.get("allOrNone"):
            self.leads, self.tasks = snapshot
        return _json({"compositeResponse": responses}, 200, self._limit_header())
