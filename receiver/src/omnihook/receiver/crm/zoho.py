"""Zoho CRM (v8): Leads or Contacts upserted with duplicate checks, the transcript as a Note.

OAuth with a refresh token: the access token is cached for its lifetime (Zoho limits how many an
account may mint) and refreshed on expiry or on one ``INVALID_TOKEN``. A bad refresh token comes
back as HTTP 200 with ``{"error": "invalid_code"}``: that is a configuration error naming the
setting. The data centre follows the token's ``api_domain``. Every record's status is read from
``data[i]`` (HTTP 200/207/400 alike).
"""

from __future__ import annotations

import time
from typing import Any

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
    json_of,
    require_credentials,
    transcript_text,
)

__all__ = ["ZohoAdapter"]

_RATE_LIMIT_WAIT = 30.0


class ZohoAdapter(RecordAdapter):
    kind = "zoho"
    transcript_limit = 32_000

    def __init__(
        self,
        name: str = "zoho",
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        settings: dict[str, str] | None = None,
        accounts_url: str = "https://accounts.zoho.com",
        api_version: str = "v8",
        module: str = "Leads",
        duplicate_check_fields: tuple[str, ...] = ("Email",),
        lead_source: str | None = "Chat",
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self._settings = settings or {
            "client_id": "client_id_env",
            "client_secret": "client_secret_env",
            "refresh_token": "refresh_token_env",
        }
        self._credentials = require_credentials(
            name,
            "Zoho",
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": refresh_token,
            },
            self._settings,
        )
        self._accounts_url = accounts_url.rstrip("/")
        self._api_version = api_version
        self.module = module
        self._duplicate_check_fields = list(duplicate_check_fields)
        self._lead_source = lead_source
        self._http = HttpCrm(name, timeout)
        self._access_token: str | None = None
        self._api_domain: str | None = None
        self._expires_at = 0.0

    async def upsert_person(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        record_id = await self._upsert(person)
        return await self.remember(
            self.link_key(event, person), {"recordId": record_id, "module": self.module}
        )

    async def save_transcript(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        key = self.link_key(event, person)
        known = await self.links.get(self.name, key)
        record_id = await self._upsert(person)
        note = {
            "Note_Title": f"Chat transcript {event.room_id or ''}".strip(),
            "Note_Content": transcript_text(event, self.transcript_limit, self.chat_url),
            "Parent_Id": {"module": {"api_name": self.module}, "id": record_id},
        }
        note_id = known.get("noteId")
        if note_id:
            await self._record("PUT", f"/Notes/{note_id}", {"data": [note]})
        else:
            note_id = await self._record("POST", "/Notes", {"data": [note]})
        return await self.remember(
            key, {"recordId": record_id, "module": self.module, "noteId": note_id}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _upsert(self, person: Person) -> str:
        record: dict[str, Any] = {"Last_Name": person.last_name}
        if person.first_name:
            record["First_Name"] = person.first_name
        if person.email:
            record["Email"] = person.email
        if person.phone:
            record["Phone"] = person.phone
        if self._lead_source and self.module == "Leads":
            record["Lead_Source"] = self._lead_source
        record.update(self.mapped_fields(person))
        body = {
            "data": [record],
            "duplicate_check_fields": self._duplicate_check_fields,
            "trigger": ["workflow"],
        }
        return await self._record("POST", f"/{self.module}/upsert", body)

    async def _record(self, method: str, path: str, body: dict[str, Any]) -> str:
        """One record's call; its id, or the record's own error as an exception."""
        answer = await self._call(method, path, body)
        results = answer.get("data") if isinstance(answer, dict) else None
        if not results:
            raise CrmValidationError(f"{self.name}: Zoho answered without data: {answer}")
        result = results[0]
        if result.get("status") != "success":
            detail = result.get("details") or {}
            field = (
                f" ({detail['api_name']})"
                if isinstance(detail, dict) and detail.get("api_name")
                else ""
            )
            raise CrmValidationError(
                f"{self.name}: Zoho {result.get('code')}{field}: {result.get('message')}"
            )
        return str(result["details"]["id"])

    async def _call(
        self, method: str, path: str, body: dict[str, Any], refreshed: bool = False
    ) -> Any:
        token, domain = await self._token()
        url = f"{domain}/crm/{self._api_version}{path}"
        response = await self._http.request(
            method, url, json=body, headers={"Authorization": f"Zoho-oauthtoken {token}"}
        )
        answer = json_of(response)
        code = answer.get("code") if isinstance(answer, dict) else None
        if response.status_code == 401:
            if code == "INVALID_TOKEN" and not refreshed:
                self._access_token = None  # expired or revoked early: one refresh, one retry
                return await self._call(method, path, body, refreshed=True)
            message = answer.get("message") if isinstance(answer, dict) else response.text
            raise CrmConfigError(
                f"{self.name}: Zoho {code or 401}: {message} (check {self._settings['refresh_token']} "
                "and the client's scopes)"
            )
        if response.status_code == 429:
            raise CrmRateLimited(_RATE_LIMIT_WAIT, f"{self.name}: Zoho TOO_MANY_REQUESTS")
        if response.status_code >= 500:
            raise self._http.server_error(response)
        if (
            response.status_code in (200, 201, 202, 207, 400)
            and isinstance(answer, dict)
            and "data" in answer
        ):
            return answer  # per-record outcomes, read by _record
        message = answer.get("message") if isinstance(answer, dict) else response.text
        raise CrmValidationError(
            f"{self.name}: Zoho {response.status_code} {code or ''}: {message}".strip()
        )

    async def _token(self) -> tuple[str, str]:
        if self._access_token and self._api_domain and time.monotonic() < self._expires_at:
            return self._access_token, self._api_domain
        response = await self._http.request(
            "POST",
            f"{self._accounts_url}/oauth/v2/token",
            data={"grant_type": "refresh_token", **self._credentials},
        )
        answer = json_of(response)
        if response.status_code >= 500:
            raise self._http.server_error(response)
        if not isinstance(answer, dict) or "error" in answer or "access_token" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else response.text
            settings = ", ".join(self._settings.values())
            raise CrmConfigError(
                f"{self.name}: Zoho refused the refresh token ({error}); check {settings}"
            )
        self._access_token = str(answer["access_token"])
        register_secret(self._access_token)
        self._api_domain = str(answer.get("api_domain", "https://www.zohoapis.com")).rstrip("/")
        # Refresh a minute early rather than fail a call on the boundary.
        self._expires_at = time.monotonic() + float(answer.get("expires_in", 3600)) - 60
        return self._access_token, self._api_domain
