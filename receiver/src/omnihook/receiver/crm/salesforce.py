"""Salesforce (REST): a Lead upserted by an External-ID field, the transcript as a Task.

A client-credentials token comes from the org's My Domain; Salesforce gives no expiry, so one
``INVALID_SESSION_ID`` fetches a new token and the call is tried once more. The transcript is
saved with the Lead upsert in one composite call (the Task refers to ``@{lead.id}``), and the Task
is updated in place afterwards. ``REQUEST_LIMIT_EXCEEDED`` (the org's daily allocation) is not
retried soon: the event waits an hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from omnihook.contracts import AnyEvent
from omnihook.store import register_secret

from ..router import HandlerContext
from .base import (
    CrmConfigError,
    CrmRateLimited,
    CrmValidationError,
    HttpCrm,
    Person,
    RecordAdapter,
    chat_time,
    json_of,
    require_credentials,
    transcript_text,
)

__all__ = ["SalesforceAdapter"]

_LIMIT_WAIT = 3600.0


def _halted(body: Any) -> bool:
    """A composite sub-request rolled back because another one in its transaction failed."""
    errors = body if isinstance(body, list) else [body]
    return bool(errors) and all(
        isinstance(error, dict) and error.get("errorCode") == "PROCESSING_HALTED"
        for error in errors
    )


class SalesforceAdapter(RecordAdapter):
    kind = "salesforce"
    transcript_limit = 32_000

    def __init__(
        self,
        name: str = "salesforce",
        *,
        domain_url: str,
        client_id: str,
        client_secret: str,
        settings: dict[str, str] | None = None,
        external_id_field: str = "RC_Visitor_Id__c",
        external_id_source: str = "visitor_id",
        company: str = "[not provided]",
        lead_source: str | None = "Chat",
        api_version: str = "v62.0",
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self._settings = settings or {
            "client_id": "client_id_env",
            "client_secret": "client_secret_env",
        }
        if external_id_source not in ("visitor_id", "email"):
            raise CrmConfigError(
                f"{name}: external_id_source must be visitor_id or email, got {external_id_source!r}"
            )
        self._domain_url = domain_url.rstrip("/")
        self._credentials = require_credentials(
            name,
            "Salesforce",
            {"client_id": client_id, "client_secret": client_secret},
            self._settings,
        )
        self._external_id_field = external_id_field
        self._external_id_source = external_id_source
        self._company = company
        self._lead_source = lead_source
        self._data_path = f"/services/data/{api_version}"
        self._http = HttpCrm(name, timeout)
        self._token: str | None = None
        self._instance_url: str | None = None

    async def upsert_person(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        path = self._lead_path(person)
        if path is None:
            return {}
        answer = await self._call("PATCH", path, self._lead(person))
        return await self.remember(self.link_key(event, person), {"leadId": str(answer["id"])})

    async def save_transcript(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        path = self._lead_path(person)
        if path is None:
            return {}
        key = self.link_key(event, person)
        known = await self.links.get(self.name, key)
        task = {
            "WhoId": "@{lead.id}",
            "Subject": f"Chat {event.room_id or ''}".strip(),
            "Description": transcript_text(event, self.transcript_limit, self.chat_url),
            "Status": "Completed",
            "ActivityDate": (chat_time(event) or datetime.now(UTC)).strftime("%Y-%m-%d"),
        }
        task_id = known.get("taskId")
        second: dict[str, Any] = (
            {
                "method": "PATCH",
                "url": f"{self._data_path}/sobjects/Task/{task_id}",
                "referenceId": "task",
                "body": task,
            }
            if task_id
            else {
                "method": "POST",
                "url": f"{self._data_path}/sobjects/Task",
                "referenceId": "task",
                "body": task,
            }
        )
        body = {
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": self._data_path + path,
                    "referenceId": "lead",
                    "body": self._lead(person),
                },
                second,
            ],
        }
        answer = await self._call("POST", "/composite", body)
        parts = {part["referenceId"]: part for part in answer.get("compositeResponse", [])}
        failed = [
            parts.get(reference, {})
            for reference in ("lead", "task")
            if not 200 <= int(parts.get(reference, {}).get("httpStatusCode", 500)) < 300
        ]
        if failed:
            # allOrNone: Salesforce answers every sub-request but the one that failed with
            # PROCESSING_HALTED (rolled back); the dead letter names the real cause.
            cause = next((part for part in failed if not _halted(part.get("body"))), failed[0])
            self._raise_for_errors(int(cause.get("httpStatusCode", 500)), cause.get("body"))
        lead_id = (
            str(parts["lead"]["body"]["id"]) if parts["lead"].get("body") else known.get("leadId")
        )
        if not task_id:
            task_id = str(parts["task"]["body"]["id"])
        return await self.remember(key, {"leadId": lead_id, "taskId": task_id})

    async def aclose(self) -> None:
        await self._http.aclose()

    def _lead_path(self, person: Person) -> str | None:
        value = person.visitor_id if self._external_id_source == "visitor_id" else person.email
        if not value:
            return None
        return f"/sobjects/Lead/{self._external_id_field}/{quote(value, safe='')}"

    def _lead(self, person: Person) -> dict[str, Any]:
        lead: dict[str, Any] = {"LastName": person.last_name, "Company": self._company}
        if person.first_name:
            lead["FirstName"] = person.first_name
        if person.email:
            lead["Email"] = person.email
        if person.phone:
            lead["Phone"] = person.phone
        if self._lead_source:
            lead["LeadSource"] = self._lead_source
        lead.update(self.mapped_fields(person))
        return lead

    async def _call(
        self, method: str, path: str, body: Any, *, data_path: bool = True, retried: bool = False
    ) -> Any:
        token, instance = await self._session()
        url = instance + (self._data_path if data_path else "") + path
        response = await self._http.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        answer = json_of(response)
        if response.status_code == 401 and not retried:
            self._token = None  # the session expired: one new token, one more try
            return await self._call(method, path, body, retried=True)
        if 200 <= response.status_code < 300:
            return answer if answer is not None else {}
        if response.status_code >= 500:
            raise self._http.server_error(response)
        self._raise_for_errors(response.status_code, answer)
        raise AssertionError("unreachable")

    def _raise_for_errors(self, status: int, answer: Any) -> None:
        errors = (
            answer if isinstance(answer, list) else [answer] if isinstance(answer, dict) else []
        )
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code, message = first.get("errorCode", str(status)), first.get("message", str(answer))
        fields = f" ({', '.join(first['fields'])})" if first.get("fields") else ""
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise CrmRateLimited(_LIMIT_WAIT, f"{self.name}: Salesforce {code}: {message}")
        if status == 401 or code == "INVALID_SESSION_ID":
            raise CrmConfigError(
                f"{self.name}: Salesforce {code}: {message} (check {', '.join(self._settings.values())})"
            )
        if status == 300:
            message = f"several Leads have this {self._external_id_field}: {message}"
        raise CrmValidationError(f"{self.name}: Salesforce {code}{fields}: {message}")

    async def _session(self) -> tuple[str, str]:
        if self._token and self._instance_url:
            return self._token, self._instance_url
        response: httpx.Response = await self._http.request(
            "POST",
            f"{self._domain_url}/services/oauth2/token",
            data={"grant_type": "client_credentials", **self._credentials},
        )
        answer = json_of(response)
        if response.status_code >= 500:
            raise self._http.server_error(response)
        if (
            response.status_code != 200
            or not isinstance(answer, dict)
            or "access_token" not in answer
        ):
            error = (
                answer.get("error_description") or answer.get("error")
                if isinstance(answer, dict)
                else response.text
            )
            raise CrmConfigError(
                f"{self.name}: Salesforce refused the client credentials ({error}); check "
                f"{', '.join(self._settings.values())} and domain_url"
            )
        self._token = str(answer["access_token"])
        register_secret(self._token)
        self._instance_url = str(answer.get("instance_url") or self._domain_url).rstrip("/")
        return self._token, self._instance_url
