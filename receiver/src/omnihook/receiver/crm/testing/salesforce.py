"""A local fake of the Salesforce API: see :mod:`omnihook.receiver.crm.testing`."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from typing import Any
from urllib.parse import unquote

from werkzeug import Request, Response

from ._base import HTTPServer, _Fake, _json

__all__ = ["FakeSalesforce"]


class FakeSalesforce(_Fake):
    """A Salesforce org on its My Domain: client-credentials tokens, Lead upsert by one External-ID
    field, Tasks, composite requests (``allOrNone`` rolls back).

    Switches: :meth:`expire_sessions` (401 ``INVALID_SESSION_ID``), :meth:`exhaust_daily_limit`
    (403 ``REQUEST_LIMIT_EXCEEDED``), :meth:`add_validation_rule` (400
    ``FIELD_CUSTOM_VALIDATION_EXCEPTION``), a Lead without ``LastName`` or ``Company`` gets
    ``REQUIRED_FIELD_MISSING`` as the real API answers.

    As Salesforce does: the token endpoint takes the client id and secret in the form or in an
    ``Authorization: Basic`` header; a 201 carries a ``Location`` header (in a composite, in the
    sub-request's ``httpHeaders``); a failed ``allOrNone`` composite answers every other
    sub-request, the ones that had succeeded too, 400 ``PROCESSING_HALTED``.
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
        self._validation_rules: dict[str, tuple[str, list[str]]] = {}
        self._route("POST", r"^/services/oauth2/token/?$", self._token)
        self._route("PATCH", rf"^{self.API}/sobjects/Lead/([^/]+)/(.+)$", self._lead_route)
        self._route("POST", rf"^{self.API}/sobjects/Task/?$", self._task_route)
        self._route("PATCH", rf"^{self.API}/sobjects/Task/([^/]+)/?$", self._task_route)
        self._route("POST", rf"^{self.API}/composite/?$", self._composite)

    def expire_sessions(self) -> None:
        self._valid_tokens.clear()

    def exhaust_daily_limit(self) -> None:
        self._limit_exceeded = True

    def add_validation_rule(
        self, sobject: str, message: str, fields: list[str] | None = None
    ) -> None:
        """Every save of ``sobject`` ("Lead" or "Task") fails as an org's validation rule makes it:
        400 ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` with the rule's error message."""
        self._validation_rules[sobject] = (message, list(fields or []))

    def _rule_broken(self, sobject: str) -> tuple[int, Any] | None:
        if sobject not in self._validation_rules:
            return None
        message, fields = self._validation_rules[sobject]
        return 400, [
            {"message": message, "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": fields}
        ]

    def _location(self, status: int, body: Any, sobject: str) -> dict[str, str]:
        if status == 201 and isinstance(body, dict) and body.get("id"):
            return {"Location": f"{self.API}/sobjects/{sobject}/{body['id']}"}
        return {}

    def lead_by_external_id(self, value: str) -> dict[str, Any] | None:
        return next(
            (lead for lead in self.leads.values() if lead.get(self.external_id_field) == value),
            None,
        )

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/5000"}

    def _token(self, request: Request) -> Response:
        form = request.form
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":  # client_secret_basic, as simple-salesforce sends it
            try:
                client_id, _, client_secret = (
                    base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        if (form.get("grant_type") != "client_credentials" or client_id != self.client_id
                or client_secret != self.client_secret):  # fmt: skip
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
        headers = {**self._limit_header(), **self._location(status, body, "Lead")}
        return _json(body, status, headers)

    def _task_route(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        status, body = self._save_task(request.method, request.path, request.get_json() or {})
        if status == 204:
            return Response(status=204, headers=self._limit_header())
        headers = {**self._limit_header(), **self._location(status, body, "Task")}
        return _json(body, status, headers)

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
        if (broken := self._rule_broken("Lead")) is not None:
            return broken
        if existing is None:
            existing = f"00Q5g00000{next(self._ids):08d}"
            self.leads[existing] = merged
            return 201, {"id": existing, "success": True, "errors": [], "created": True}
        self.leads[existing] = merged
        return 200, {"id": existing, "success": True, "errors": [], "created": False}

    def _save_task(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "PATCH":
            task_id = path.rstrip("/").rsplit("/", 1)[1]
            if task_id not in self.tasks:
                return 404, [
                    {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
                ]
            if (broken := self._rule_broken("Task")) is not None:
                return broken
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
        if (broken := self._rule_broken("Task")) is not None:
            return broken
        task_id = f"00T5g00000{next(self._ids):08d}"
        self.tasks[task_id] = dict(body)
        return 201, {"id": task_id, "success": True, "errors": []}

    def _composite(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = request.get_json() or {}
        all_or_none = bool(body.get("allOrNone"))
        snapshot = copy.deepcopy((self.leads, self.tasks))
        references: dict[str, Any] = {}
        responses: list[dict[str, Any]] = []
        failed = False
        for sub in body.get("compositeRequest", []):
            if failed and all_or_none:
                responses.append(_halted(sub["referenceId"]))
                continue
            payload = json.loads(re.sub(r"@\{(\w+)\.id\}", lambda m: str(references.get(m.group(1), {}).get("id")),
                                        json.dumps(sub.get("body") or {})))  # fmt: skip
            sobject = "Lead" if "/sobjects/Lead/" in sub["url"] else "Task"
            if sobject == "Lead":
                status, answer = self._upsert_lead(sub["url"], payload)
            else:
                status, answer = self._save_task(sub["method"], sub["url"], payload)
            failed = failed or status >= 300
            references[sub["referenceId"]] = answer if isinstance(answer, dict) else {}
            responses.append({"body": answer, "httpHeaders": self._location(status, answer, sobject),
                              "httpStatusCode": status, "referenceId": sub["referenceId"]})  # fmt: skip
        if failed and all_or_none:
            # "If allOrNone is set to true in the composite request and a subrequest returns an
            # error, all other subrequests return the 400 HTTP status code": the ones that had
            # succeeded are rolled back and say so.
            self.leads, self.tasks = snapshot
            responses = [
                part if part["httpStatusCode"] >= 300 else _halted(part["referenceId"])
                for part in responses
            ]
        return _json({"compositeResponse": responses}, 200, self._limit_header())


def _halted(reference_id: str) -> dict[str, Any]:
    return {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference_id,
    }
