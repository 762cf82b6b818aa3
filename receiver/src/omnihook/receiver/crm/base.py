"""What every CRM adapter shares: the adapter interface, how a visitor becomes a person record,
the transcript text, the failure classes, and where adapters remember the ids they created."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import httpx

from omnihook.contracts import (
    AnyEvent,
    EventType,
    LivechatOfflineMessage,
    LivechatSession,
    RoomEvent,
    UnknownEvent,
)
from omnihook.store import register_secret

from ..ops import tracing
from ..ops.breaker import CircuitBreaker, CircuitPolicy
from ..ops.metrics import METRICS, crm_operation
from ..ops.tracing import TRACING
from ..router import HandlerContext, PermanentError, RetryAfter, Router

__all__ = [
    "DEFAULT_PERSON_EVENTS",
    "DEFAULT_TRANSCRIPT_EVENTS",
    "CrmAdapter",
    "CrmConfigError",
    "CrmRateLimited",
    "CrmTransientError",
    "CrmValidationError",
    "LinkStore",
    "MemoryLinks",
    "Person",
    "RecordAdapter",
    "person_of",
    "split_name",
    "transcript_text",
]

logger = logging.getLogger("omnihook.crm")

DEFAULT_PERSON_EVENTS = frozenset(
    {EventType.CHAT_START, EventType.CHAT_TAKEN, EventType.LEAD_CAPTURE, EventType.OFFLINE_MESSAGE}
)
DEFAULT_TRANSCRIPT_EVENTS = frozenset({EventType.CHAT_CLOSE, EventType.CHAT_EDIT})


class CrmTransientError(Exception):
    """The CRM could not be reached or failed on its side (network, 5xx): retried with backoff."""


class CrmRateLimited(RetryAfter):
    """The CRM asked to slow down: retried after the wait it advised."""


class CrmConfigError(PermanentError):
    """The CRM refused our credentials or settings even after a refresh: fix the named setting,
    then replay the dead letters."""


class CrmValidationError(PermanentError):
    """The CRM rejected the data itself (its own message is kept): retrying cannot help."""


class LinkStore(Protocol):
    """Where an adapter keeps the ids it created (the store's ``crm_links``, or memory)."""

    async def get(self, adapter: str, key: str) -> dict[str, Any]: ...

    async def update(
        self, adapter: str, key: str, values: dict[str, Any], now: float
    ) -> dict[str, Any]: ...


class MemoryLinks:
    """Links kept in this process only (inline mode, tests): lost on restart."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, adapter: str, key: str) -> dict[str, Any]:
        return dict(self._data.get((adapter, key), {}))

    async def update(
        self, adapter: str, key: str, values: dict[str, Any], now: float
    ) -> dict[str, Any]:
        merged = {**self._data.get((adapter, key), {}), **values}
        self._data[(adapter, key)] = merged
        return dict(merged)


@dataclass(frozen=True)
class Person:
    """A visitor as a CRM sees a person."""

    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    visitor_id: str | None
    username: str | None
    name: str | None
    department: str | None
    tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    """The visitor's custom fields, then the room's (the room's win on a clash)."""

    @property
    def key(self) -> str | None:
        """The visitor's id, else ``email:<address>``; ``None`` when neither is known."""
        if self.visitor_id:
            return self.visitor_id
        return f"email:{self.email}" if self.email else None


def split_name(name: str | None, fallback: str | None = None) -> tuple[str, str]:
    """``"Jane van Doe"`` → ``("Jane", "van Doe")``; a single word becomes the last name (which
    CRMs require); nothing at all gives the fallback (the username) or ``"[unknown]"``."""
    text = " ".join((name or "").split()) or " ".join((fallback or "").split())
    if not text:
        return "", "[unknown]"
    first, _, rest = text.partition(" ")
    return (first, rest) if rest else ("", first)


def person_of(event: AnyEvent) -> Person | None:
    """The person an event is about (``None`` for unknown types and the Send Test sample)."""
    if isinstance(event, UnknownEvent) or event.is_test:
        return None
    if isinstance(event, LivechatOfflineMessage):
        first, last = split_name(event.visitor.name, event.visitor.first_email)
        return Person(first, last, event.visitor.first_email, event.visitor.first_phone, None, None,
                      event.visitor.name, None)  # fmt: skip
    assert isinstance(event, RoomEvent)
    visitor = event.visitor
    first, last = split_name(visitor.name, visitor.username)
    return Person(
        first_name=first,
        last_name=last,
        email=visitor.first_email,
        phone=visitor.first_phone,
        visitor_id=visitor.id or None,
        username=visitor.username,
        name=visitor.name,
        department=getattr(event, "department_id", None) or visitor.department,
        tags=tuple(event.tags or ()),
        custom_fields={**(visitor.custom_fields or {}), **(event.custom_fields or {})},
    )


def transcript_text(event: AnyEvent, limit: int, chat_url: str | None) -> str:
    """The chat as text for a note: a heading, the messages, a link back; cut to ``limit``
    characters (keeping the link) when the CRM's field is smaller."""
    if isinstance(event, LivechatOfflineMessage):
        who = event.visitor.name or event.visitor.first_email or "a visitor"
        body = f"Offline message from {who}:\n{event.message or ''}"
        link = ""
    else:
        assert isinstance(event, RoomEvent)
        heading = f"Rocket.Chat conversation {event.room_id}"
        if isinstance(event, LivechatSession) and event.closer:
            heading += f" (closed by {event.closer})"
        if event.tags:
            heading += f"\nTags: {', '.join(event.tags)}"
        body = f"{heading}\n\n{event.transcript()}"
        link = f"\n\n{chat_url.format(room_id=event.room_id)}" if chat_url else ""
    if len(body) + len(link) <= limit:
        return body + link
    marker = "\n[… transcript truncated]"
    return body[: max(0, limit - len(link) - len(marker))] + marker + link


def chat_time(event: AnyEvent) -> datetime | None:
    """When the chat happened, for a note's date: its close, else its last message."""
    if isinstance(event, LivechatSession) and event.closed_at:
        return event.closed_at
    if isinstance(event, RoomEvent):
        if event.last_message_at:
            return event.last_message_at
        return max((m.ts for m in event.messages), default=event.created_at)
    if isinstance(event, LivechatOfflineMessage):
        return event.sent_at
    return None


def iso_utc(timestamp: datetime | None) -> str:
    """``2026-01-01T10:00:00Z`` (now when ``None``)."""
    moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class CrmAdapter(ABC):
    """Makes a CRM reflect Rocket.Chat events, idempotently, and returns the ids to hand back to
    Rocket.Chat (as crmData, under the adapter's name). Register it with :meth:`register`."""

    circuit_policy: CircuitPolicy = CircuitPolicy()
    """When this adapter's circuit opens (:mod:`omnihook.receiver.ops.breaker`); set before
    :meth:`register` (the bridge file's ``circuit_failures``...)."""
    circuit_clock: Callable[[], float] = staticmethod(time.monotonic)
    circuit: CircuitBreaker | None = None
    """The circuit, once registered."""

    def __init__(self, name: str, *, links: LinkStore | None = None) -> None:
        self.name = name
        self.links: LinkStore = links or MemoryLinks()

    @property
    @abstractmethod
    def events(self) -> frozenset[EventType]:
        """The event types this adapter takes."""

    @abstractmethod
    async def handle(self, event: AnyEvent, context: HandlerContext) -> dict[str, Any] | None:
        """Reflect one event in the CRM; return ``{name: ids}`` or ``None``."""

    async def aclose(self) -> None:  # noqa: B027 - optional: only adapters with clients close
        """Release connections (called when the receiver shuts down)."""

    def register(self, router: Router) -> None:
        """Handle this adapter's events in ``router`` (a handler named ``crm:<name>``); the
        Send Test sample never reaches it."""

        circuit = CircuitBreaker(self.name, self.circuit_policy, self.circuit_clock)
        self.circuit = circuit

        async def handler(event: AnyEvent, context: HandlerContext) -> dict[str, Any] | None:
            circuit.raise_if_open()
            probing = circuit.state == "half_open"
            try:
                result = await self.handle(event, context)
            except CrmTransientError as exc:
                circuit.failed(str(exc))
                if probing:  # the probe is the breaker's, not the event's: no attempt spent
                    circuit.raise_if_open()
                raise
            except (RetryAfter, PermanentError):
                circuit.succeeded()  # the CRM answered (a rate limit, a refusal): it is up
                raise
            circuit.succeeded()
            return result

        handler.__qualname__ = handler.__name__ = f"crm:{self.name}"
        if self.events:
            router.on(*self.events)(handler)
        router.add_cleanup(self.aclose)

    async def remember(self, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into what this adapter keeps under ``key``; returns the result."""
        return await self.links.update(self.name, key, values, time.time())


class RecordAdapter(CrmAdapter):
    """An adapter that keeps a person record and a transcript per chat.

    By default the person is upserted on start, taken, lead capture and offline message, and the
    transcript is saved (created, then updated in place) on close and edit. ``field_map`` copies
    Rocket.Chat custom fields (visitor's and room's) to CRM fields; ``chat_url`` (with a
    ``{room_id}`` placeholder) links each transcript back to the chat.
    """

    kind: ClassVar[str]
    transcript_limit: ClassVar[int] = 32_000

    def __init__(
        self,
        name: str,
        *,
        links: LinkStore | None = None,
        person_events: Iterable[EventType] = DEFAULT_PERSON_EVENTS,
        transcript_events: Iterable[EventType] = DEFAULT_TRANSCRIPT_EVENTS,
        chat_url: str | None = None,
        field_map: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, links=links)
        self.person_events = frozenset(person_events)
        self.transcript_events = frozenset(transcript_events)
        self.chat_url = chat_url
        self.field_map = dict(field_map or {})

    @property
    def events(self) -> frozenset[EventType]:
        return self.person_events | self.transcript_events

    async def handle(self, event: AnyEvent, context: HandlerContext) -> dict[str, Any] | None:
        person = person_of(event)
        if person is None or event.event_type is None:
            return None
        if event.event_type in self.transcript_events:
            ids = await self.save_transcript(event, person, context)
        elif event.event_type in self.person_events:
            ids = await self.upsert_person(event, person, context)
        else:
            return None
        return {self.name: ids} if ids else None

    @abstractmethod
    async def upsert_person(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        """Create or update the person; return the ids to hand back (``{}`` if skipped)."""

    @abstractmethod
    async def save_transcript(
        self, event: AnyEvent, person: Person, context: HandlerContext
    ) -> dict[str, Any]:
        """Create or update the transcript linked to the person; return the ids to hand back."""

    def mapped_fields(self, person: Person) -> dict[str, Any]:
        """The person's custom fields renamed by ``field_map`` (unmapped ones are left out)."""
        return {target: person.custom_fields[source] for source, target in self.field_map.items()
                if person.custom_fields.get(source) not in (None, "")}  # fmt: skip

    def link_key(self, event: AnyEvent, person: Person) -> str:
        """The key this adapter's ids are kept under: the room, or the person for room-less events."""
        return event.room_id or f"person:{person.key}"


def require_credentials(
    adapter: str, crm: str, values: Mapping[str, str], settings: Mapping[str, str]
) -> dict[str, str]:
    """``values`` (credential → value) when none is empty; else a configuration error naming
    the setting to fix (``settings``: credential → setting name). The values are registered
    as secrets: never in a recorded error or a log line."""
    register_secret(*values.values())
    for credential, value in values.items():
        if not value:
            label = credential.replace("_", " ")
            raise CrmConfigError(
                f"{adapter}: no {crm} {label} (set {settings.get(credential, credential)})"
            )
    return dict(values)


class HttpCrm:
    """An httpx client with the failure classes every adapter needs."""

    def __init__(self, adapter: str, timeout: float) -> None:
        self.adapter = adapter
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        target = httpx.URL(url)
        operation = crm_operation(method, target.path)
        started = time.perf_counter()
        outcome = "ok"
        # A CLIENT span per call when tracing is on; the trace context goes out with the call.
        traced = tracing.crm_call_span(self.adapter, operation, target) if TRACING.on else None
        with traced or tracing.UNTRACED as span:
            try:
                if span is not None:
                    kwargs["headers"] = tracing.crm_call_headers(kwargs.get("headers"))
                response = await self.client.request(method, url, **kwargs)
                outcome = _outcome(response.status_code)
                if span is not None:
                    tracing.crm_call_answered(span, response.status_code)
                return response
            except httpx.TimeoutException as exc:
                outcome = "timeout"
                raise CrmTransientError(
                    f"{self.adapter}: no answer from {url} within {self.timeout:g} s"
                ) from exc
            except httpx.TransportError as exc:
                outcome = "unreachable"
                raise CrmTransientError(f"{self.adapter}: cannot reach {url}: {exc}") from exc
            finally:
                METRICS.crm_requests.labels(self.adapter, operation, outcome).inc()
                METRICS.crm_latency.labels(self.adapter, operation).observe(
                    time.perf_counter() - started
                )

    def server_error(self, response: httpx.Response) -> CrmTransientError:
        return CrmTransientError(
            f"{self.adapter}: HTTP {response.status_code} from {response.request.url}: {_snippet(response)}"
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _outcome(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error" if status >= 400 else "ok"


def _snippet(response: httpx.Response, limit: int = 300) -> str:
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_of(response: httpx.Response) -> Any:
    """The response's JSON, or ``None`` when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
