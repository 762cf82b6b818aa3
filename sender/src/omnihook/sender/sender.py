"""``Sender``: deliver events to a webhook URL exactly as Rocket.Chat does, retries included.

>>> sender = Sender("https://crm.example/hook", token="s3cret")   # doctest: +SKIP
>>> delivery = await sender.send(event)                            # doctest: +SKIP
>>> delivery.ok, delivery.status, delivery.attempts                # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from omnihook.contracts import (
    TOKEN_HEADER,
    EventType,
    RoomEvent,
    WireEvent,
    encode_json,
    samples,
)
from omnihook.store import OutboxItem, Store, StoreError, redact, register_secret

from .clock import Clock, SystemClock
from .policy import RetryPolicy
from .transport import HttpTransport, TransportError

if TYPE_CHECKING:
    from .outbox import OutboxDispatcher

__all__ = [
    "SEND_TEST_TIMEOUT",
    "Attempt",
    "Delivery",
    "Payload",
    "Sender",
    "encode_payload",
]

Payload = WireEvent | Mapping[str, Any] | bytes | str
"""What can be sent: a model, a JSON-ready mapping, or the exact JSON text."""

ResponseCallback = Callable[[str, str], Awaitable[None] | None]
AttemptCallback = Callable[["Attempt"], Awaitable[None] | None]

SEND_TEST_TIMEOUT = 20.0
"""Rocket.Chat's Send Test request has no timeout setting; its fetch gives up after 20 s."""

_USER_AGENT = "omnihook-sender/0.1 (Rocket.Chat Omnichannel webhook)"


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt of a delivery."""

    number: int
    status: int | None
    """The HTTP status, or ``None`` when there was no answer (network error, timeout)."""
    error: str | None
    """Why the attempt failed, ``None`` when it succeeded."""
    response_text: str | None
    elapsed: float
    """Seconds the request took."""
    retry_in: float | None
    """Seconds until the next attempt, ``None`` when there will be none."""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one event, after every attempt its policy allowed."""

    ok: bool
    status: int | None
    """The last HTTP status, ``None`` if the last attempt got no answer."""
    attempts: int
    response_text: str | None
    """The last response body."""
    error: str | None
    """Why the delivery failed, ``None`` when it succeeded."""
    history: tuple[Attempt, ...]


class Sender:
    """Posts events to ``url`` the way Rocket.Chat's ``sendRequest`` does.

    ``POST`` of the payload's JSON with ``Content-Type: application/json``, the
    ``X-RocketChat-Livechat-Token`` header only when ``token`` is non-empty, ``timeout`` seconds per
    attempt, and retries by ``policy`` (default: Rocket.Chat's current rules). Success is exactly
    200; its response text goes to ``on_response(room_id, text)`` for room events, which is what
    Rocket.Chat stores as the room's crmData. ``on_attempt`` sees every attempt as it ends.

    With an ``outbox`` (a :class:`~omnihook.store.Store` or a store URL), :meth:`enqueue` stores
    deliveries durably and a dispatcher delivers them, ``concurrency`` at a time, keeping each
    room's order and resuming due retries after a restart; ``echo_crm_data`` puts each room's
    last 200 body into its later deliveries as ``crmData``, as Rocket.Chat does. A delivery held
    by a sender that died is taken over after ``outbox_lease`` seconds (default: 30, or three
    timeouts if longer).

    Use it as an async context manager (which also starts the dispatcher), or call
    :meth:`aclose` when done.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 5.0,
        policy: RetryPolicy | None = None,
        on_response: ResponseCallback | None = None,
        *,
        on_attempt: AttemptCallback | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        max_connections: int = 100,
        user_agent: str = _USER_AGENT,
        outbox: Store | str | None = None,
        concurrency: int = 64,
        echo_crm_data: bool = False,
        outbox_lease: float | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL, got {url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.url = url
        self.token = token or None
        register_secret(self.token)  # never in a recorded error or a log line
        self.timeout = timeout
        self.policy = policy or RetryPolicy.rocketchat()
        self.on_response = on_response
        self.on_attempt = on_attempt
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self._user_agent = user_agent
        self._transport = HttpTransport(max_connections)
        self._owns_outbox = isinstance(outbox, str)
        self.outbox: Store | None = Store(outbox) if isinstance(outbox, str) else outbox
        self._concurrency = concurrency
        self._echo_crm_data = echo_crm_data
        self._outbox_lease = outbox_lease
        self._dispatcher: OutboxDispatcher | None = None
        self._dispatching: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self.outbox is not None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop the outbox dispatcher (attempts in flight get ``grace`` seconds), close the
        connection pool and the outbox store if the sender opened it."""
        if self._dispatcher is not None and self._dispatching is not None:
            await self._dispatcher.stop(grace)
            await self._dispatching
            self._dispatching = None
        if self.outbox is not None and self._owns_outbox:
            await self.outbox.close()
        await self._transport.aclose()

    # -- the durable outbox ----------------------------------------------------------------------

    def dispatcher(self) -> OutboxDispatcher:
        """The outbox dispatcher (created on first use)."""
        if self.outbox is None:
            raise RuntimeError(
                "this sender has no outbox: Sender(url, outbox='sqlite:///./omnihook.db') "
                "or outbox=Store(...)"
            )
        if self._dispatcher is None:
            from .outbox import OutboxDispatcher  # the dispatcher builds on this module

            self._dispatcher = OutboxDispatcher(
                self,
                self.outbox,
                concurrency=self._concurrency,
                echo_crm_data=self._echo_crm_data,
                lease=self._outbox_lease,
            )
        return self._dispatcher

    async def start(self) -> None:
        """Open the outbox and deliver it in the background until :meth:`aclose`."""
        dispatcher = self.dispatcher()
        if self._dispatching is None:
            with contextlib.suppress(StoreError):  # it keeps trying: the store may come back
                await self.outbox.connect()  # type: ignore[union-attr]
            self._dispatching = asyncio.create_task(dispatcher.run(), name="omnihook-outbox")

    async def enqueue(self, event: Payload) -> int:
        """Store a delivery in the outbox and return its id once it is committed.

        The dispatcher delivers it with the policy, resuming due retries after a restart; one
        room's deliveries go out in order. Concurrent calls share commits.
        """
        dispatcher = self.dispatcher()
        assert self.outbox is not None
        body = encode_payload(event)
        room_id, event_type = _describe(event, body)
        await self.outbox.connect()
        item = OutboxItem(self.url, body, room_id, event_type, self.clock.time())
        entry_id = await self.outbox.outbox.put(item)
        dispatcher.wake()
        return entry_id

    async def drain(self) -> None:
        """Deliver the outbox until nothing is left unfinished (waiting for due retries)."""
        await self.dispatcher().drain()

    def headers(self) -> dict[str, str]:
        """The headers of every webhook request."""
        headers = {"Content-Type": "application/json", "User-Agent": self._user_agent}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        return headers

    async def send(self, event: Payload) -> Delivery:
        """Deliver one event with the policy's retries; never raises for HTTP or network failures."""
        body = encode_payload(event)
        delivery = await self._deliver(body, self.headers(), self.timeout, self.policy)
        if delivery.ok and self.on_response is not None:
            room_id, _ = _describe(event, body)
            if room_id is not None:
                await maybe_await(self.on_response(room_id, delivery.response_text or ""))
        return delivery

    async def send_test(
        self, now: datetime | None = None, timeout: float = SEND_TEST_TIMEOUT
    ) -> Delivery:
        """Do what the admin page's Send Test button does: one POST of the Send Test sample,
        with the token header even when empty and ``Accept: application/json``."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            TOKEN_HEADER: self.token or "",
            "Accept": "application/json",
        }
        body = encode_payload(samples.send_test_sample(now))
        return await self._deliver(body, headers, timeout, RetryPolicy.no_retry())

    async def post_once(
        self, body: bytes, headers: dict[str, str] | None = None, timeout: float | None = None
    ) -> Attempt:
        """One HTTP attempt, no retry: what came back (``retry_in`` is left ``None``)."""
        started = time.perf_counter()
        try:
            response = await self._transport.post(
                self.url, body, headers or self.headers(), timeout or self.timeout
            )
        except TransportError as exc:
            return Attempt(0, None, redact(str(exc)), None, time.perf_counter() - started, None)
        error = None if response.status == 200 else _status_error(response.status, response.text)
        return Attempt(
            0, response.status, error, response.text, time.perf_counter() - started, None
        )

    async def _deliver(
        self, body: bytes, headers: dict[str, str], timeout: float, policy: RetryPolicy
    ) -> Delivery:
        history: list[Attempt] = []
        for number in range(1, policy.attempts + 1):
            outcome = await self.post_once(body, headers, timeout)
            status = outcome.status
            retry = status != 200 and number < policy.attempts and policy.should_retry(status)
            wait = policy.wait_before(number, timeout, self.rng) if retry else None
            attempt = replace(outcome, number=number, retry_in=wait)
            history.append(attempt)
            if self.on_attempt is not None:
                await maybe_await(self.on_attempt(attempt))
            if wait is None:
                break
            await self.clock.sleep(wait)
        last = history[-1]
        return Delivery(
            ok=last.ok,
            status=last.status,
            attempts=len(history),
            response_text=last.response_text,
            error=None if last.ok else final_error(last, policy),
            history=tuple(history),
        )


def encode_payload(event: Payload) -> bytes:
    """The exact bytes to post: a model's wire JSON, a mapping as ``JSON.stringify`` writes it
    (dates in Rocket.Chat's form), or text as given."""
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8")
    return encode_json(event)


def _describe(event: Payload, body: bytes) -> tuple[str | None, str | None]:
    """The room a payload belongs to and its type. Offline messages have no room (and Rocket.Chat
    keeps no crmData for them)."""
    if isinstance(event, WireEvent):
        return (event.room_id if isinstance(event, RoomEvent) else None), event.type
    document: Any = event
    if isinstance(event, bytes | str):
        try:
            document = json.loads(body)
        except ValueError:
            return None, None
    if not isinstance(document, Mapping):
        return None, None
    event_type = document.get("type")
    room_id = document.get("_id")
    if event_type == EventType.OFFLINE_MESSAGE or not isinstance(room_id, str):
        room_id = None
    return room_id, event_type if isinstance(event_type, str) else None


def _status_error(status: int, text: str) -> str:
    # Where the sender's errors are made: an endpoint may echo our token back (printed, logged
    # and recorded in the outbox from here).
    snippet = " ".join(redact(text[:1000]).split())  # masking is linear, but why mask a MB
    if len(snippet) > 200:
        snippet = snippet[:199] + "…"
    return f"HTTP {status}" + (f": {snippet}" if snippet else "")


def final_error(last: Attempt, policy: RetryPolicy) -> str:
    """Why a delivery failed, from its last attempt and the policy that stopped retrying."""
    if policy.attempts == 1:
        return last.error or "failed"
    if last.status is not None and not policy.should_retry(last.status):
        return f"{last.error} (not retried: only 5xx, 429, network errors and timeouts are)"
    if last.number > 1:
        return f"{last.error} (gave up after {last.number} attempts)"
    return last.error or "failed"


async def maybe_await(result: Awaitable[None] | None) -> None:
    """Await a callback's result when it is awaitable (callbacks may be sync or async)."""
    if inspect.isawaitable(result):
        await result
