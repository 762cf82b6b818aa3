"""A local fake of the HubSpot API: see :mod:`omnihook.receiver.crm.testing`."""

from __future__ import annotations

import re
import uuid
from typing import Any

from werkzeug import Request, Response

from ._base import HTTPServer, _Fake, _json, _now

__all__ = ["FakeHubSpot"]


class FakeHubSpot(_Fake):
    """HubSpot CRM v3: contacts by email, notes, owners; a private-app ``token``.

    Switches: :meth:`revoke_token` (401), :meth:`rate_limit_next` (429 with HubSpot's body and
    rate headers), :meth:`reject_next` (the next write -- contacts upsert, note create or
    update -- answers 400 ``VALIDATION_ERROR`` with the given message).

    Answers are shaped as HubSpot documents them and as the official ``hubspot-api-client``
    models require (``tests/receiver/crm/test_hubspot_sdk.py`` drives that client against it):
    a batch upsert keyed by email takes up to 100 inputs and answers every one of them, objects
    carry ``createdAt``/``updatedAt``/``archived``, errors carry a UUID ``correlationId``.
    """

    RATE_MAX = 100
    INTERVAL_MS = 10_000
    BATCH_LIMIT = 100

    def __init__(
        self, server: HTTPServer, token: str = "pat-na1-test-token", prefix: str = "/crm/v3"
    ) -> None:
        super().__init__(server)
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}
        """By email: ``{"id", "properties"}``."""
        self.notes: dict[str, dict[str, Any]] = {}
        """By id: ``{"properties", "associations", "createdAt"}``."""
        self.owners: dict[str, str] = {}
        """Owner id by email; add entries to let the adapter find owners."""
        self.remaining = self.RATE_MAX
        self._created = _now()
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
                          "correlationId": str(uuid.uuid4()), "category": "INVALID_AUTHENTICATION"}, 401)  # fmt: skip
        if self._rate_limits:
            policy = self._rate_limits.pop(0)
            return _json({"status": "error", "message": f"You have reached your {policy.lower()} limit.",
                          "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": policy,
                          "requestId": str(uuid.uuid4())},
                         429, {**self._headers(), "X-HubSpot-RateLimit-Remaining": "0"})  # fmt: skip
        self.remaining -= 1
        return None

    def _validation(self, message: str) -> Response:
        return _json({"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                      "category": "VALIDATION_ERROR"}, 400, self._headers())  # fmt: skip

    def _upsert(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        inputs = (request.get_json() or {}).get("inputs", [])
        if not inputs or len(inputs) > self.BATCH_LIMIT:
            return self._validation(
                f"Batch input must contain between 1 and {self.BATCH_LIMIT} inputs, got {len(inputs)}."
            )
        if any(i.get("idProperty") != "email" for i in inputs):  # the fake keys contacts on email
            return self._validation("Only email is supported as idProperty by this fake.")
        emails = [str(i.get("id", "")) for i in inputs]
        if duplicates := sorted({e for e in emails if emails.count(e) > 1}):
            return self._validation(
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique"
            )
        if self._rejections:
            return self._validation(self._rejections.pop(0))
        for email in emails:  # one invalid input fails the whole batch: no partial upsert
            if "@" not in email:
                return self._validation(
                    f'Property values were not valid: [{{"isValid":false,"message":"Email address {email} is invalid","error":"INVALID_EMAIL","name":"email"}}]'
                )
        results: list[dict[str, Any]] = []
        for email, upsert in zip(emails, inputs, strict=True):
            contact = self.contacts.get(email)
            new = contact is None
            if contact is None:
                contact = self.contacts[email] = {
                    "id": str(500 + next(self._ids)),
                    "properties": {},
                    "createdAt": _now(),
                }
            contact["properties"].update(upsert.get("properties", {}))
            results.append({"id": contact["id"], "new": new, "properties": contact["properties"],
                            "createdAt": contact["createdAt"], "updatedAt": _now(), "archived": False})  # fmt: skip
        return _json({"status": "COMPLETE", "results": results, "startedAt": _now(), "completedAt": _now()},
                     200, self._headers())  # fmt: skip

    def _create_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        if self._rejections:
            return self._validation(self._rejections.pop(0))
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
        created = _now()
        self.notes[note_id] = {
            "properties": dict(properties),
            "associations": body.get("associations", []),
            "createdAt": created,
        }
        return _json({"id": note_id, "properties": properties, "createdAt": created, "updatedAt": created,
                      "archived": False}, 201, self._headers())  # fmt: skip

    def _update_note(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        if self._rejections:
            return self._validation(self._rejections.pop(0))
        note_id = request.path.rsplit("/", 1)[1]
        if note_id not in self.notes:
            return _json({"status": "error", "message": "resource not found", "correlationId": str(uuid.uuid4()),
                          "category": "OBJECT_NOT_FOUND"}, 404, self._headers())  # fmt: skip
        self.notes[note_id]["properties"].update((request.get_json() or {}).get("properties", {}))
        note = self.notes[note_id]
        return _json({"id": note_id, "properties": note["properties"], "createdAt": note["createdAt"],
                      "updatedAt": _now(), "archived": False}, 200, self._headers())  # fmt: skip

    def _owners(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        email = request.args.get("email")
        results: list[dict[str, Any]] = [{"id": owner_id, "email": address, "type": "PERSON", "firstName": "", "lastName": "",
                    "userId": int(owner_id) if owner_id.isdigit() else None, "createdAt": self._created,
                    "updatedAt": self._created, "archived": False, "teams": []}
                   for address, owner_id in self.owners.items() if email in (None, address)]  # fmt: skip
        return _json({"results": results}, 200, self._headers())
