"""HubSpot (CRM v3): contacts upserted by email, the transcript as a note on the contact.

A private-app token authenticates (no refresh: a 401 is a configuration error). Contacts are
upserted one per call through the batch upsert endpoint (one event names one visitor). The note is
associated to the contact (association type 202) and updated in place when the room's transcript
changes (redelivered close, edit after close). Rate limits: a 429 waits for the window its
headers give (``DAILY`` waits for an hour at least), and a response saying no calls are left in
the window delays the next call until it resets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from omnihook.contracts import AnyEvent, RoomEvent

from ..router import HandlerContext
from .base import (
    CrmConfigError,
    CrmRateLimited,
    CrmValidationError,
    HttpCrm,
    Person,
    RecordAdapter,
    chat_time,
    iso_utc,
    json_of,
    require_credentials,
    transcript_text,
)

__all__ = ["HubSpotAdapter"]

_NOTE_TO_CONTACT = 202
_DAILY_WAIT = 3600.0


class HubSpotAdapter(RecordAdapter):
    kind = "hubspot"
    transcript_limit = 65_536

    def __init__(
        self,
        name: str = "hubspot",
        *,
        token: str,
        token_setting: str = "token_env",
        base_url: str = "https://api.hubapi.com",
        api_prefix: str = "/crm/v3",
        owner_from_agent: bool = True,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self._token = require_credentials(
            name, "HubSpot", {"token": token}, {"token": token_setting}
        )["token"]
        self._token_setting = token_setting
        self._base = base_url.rstrip("/") + "/" + api_prefix.strip("/")
        self._owner_from_agent = owner_from_agent
        self._http = HttpCrm(name, timeout)
        self._owners: dict[str, str | None] = {}
        self._window_resets_at = 0.0
        self._sleep = sleep

    async def upsert_person(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        contact_id = await self._upsert_contact(person)
        if contact_id is None:
            return {}
        return await self.remember(self.link_key(event, person), {"contactId": contact_id})

    async def save_transcript(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        key = self.link_key(event, person)
        known = await self.links.get(self.name, key)
        contact_id = await self._upsert_contact(person) or known.get("contactId")
        if contact_id is None:
            return {}
        properties: dict[str, Any] = {
            "hs_timestamp": iso_utc(chat_time(event)),
            "hs_note_body": transcript_text(event, self.transcript_limit, self.chat_url),
        }
        owner = await self._owner_of(event)
        if owner:
            properties["hubspot_owner_id"] = owner
        note_id = known.get("noteId")
        if note_id:
            await self._call("PATCH", f"/objects/notes/{note_id}", {"properties": properties})
        else:
            association = {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": _NOTE_TO_CONTACT,
            }
            body = {
                "properties": properties,
                "associations": [{"to": {"id": contact_id}, "types": [association]}],
            }
            note_id = (await self._call("POST", "/objects/notes", body))["id"]
        return await self.remember(key, {"contactId": contact_id, "noteId": note_id})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _upsert_contact(self, person: Person) -> str | None:
        if not person.email:
            return None  # contacts are keyed on email: nothing to key this visitor on
        properties = {
            "email": person.email,
            "firstname": person.first_name,
            "lastname": person.last_name,
        }
        if person.phone:
            properties["phone"] = person.phone
        properties.update(self.mapped_fields(person))
        body = {"inputs": [{"idProperty": "email", "id": person.email, "properties": properties}]}
        answer = await self._call("POST", "/objects/contacts/batch/upsert", body)
        if answer.get("errors"):
            raise CrmValidationError(
                f"{self.name}: {answer['errors'][0].get('message', answer['errors'])}"
            )
        return str(answer["results"][0]["id"])

    async def _owner_of(self, event: AnyEvent) -> str | None:
        agent = event.agent if isinstance(event, RoomEvent) else None
        email = agent.first_email if agent is not None else None  # any of the email forms
        if not self._owner_from_agent or not email:
            return None
        if email not in self._owners:
            answer = await self._call("GET", "/owners", params={"email": email})
            results = answer.get("results") or []
            self._owners[email] = str(results[0]["id"]) if results else None
        return self._owners[email]

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        pause = self._window_resets_at - time.monotonic()
        if pause > 0:  # the last answer said this window is used up: wait for the next one
            await self._sleep(pause)
        response = await self._http.request(
            method,
            self._base + path,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        answer = json_of(response)
        if response.status_code in (200, 201, 207):
            self._note_rate_headers(response)  # (after a 429 the worker waits instead)
            return answer if isinstance(answer, dict) else {}
        message = (
            answer.get("message", response.text) if isinstance(answer, dict) else response.text
        )
        if response.status_code == 401:
            raise CrmConfigError(
                f"{self.name}: HubSpot rejected the token from {self._token_setting}: {message}"
            )
        if response.status_code == 429:
            raise CrmRateLimited(self._rate_wait(response, answer), f"{self.name}: {message}")
        if response.status_code >= 500:
            raise self._http.server_error(response)
        raise CrmValidationError(f"{self.name}: HubSpot {response.status_code}: {message}")

    def _rate_wait(self, response: httpx.Response, answer: Any) -> float:
        if isinstance(answer, dict) and answer.get("policyName") == "DAILY":
            return _DAILY_WAIT
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        return int(interval) / 1000 if interval and interval.isdigit() else 10.0

    def _note_rate_headers(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if remaining == "0" and interval and interval.isdigit():
            self._window_resets_at = time.monotonic() + int(interval) / 1000
