"""Route each event to the handlers decorated for its type; run them all; report every failure.

>>> router = Router()
>>> @router.on(EventType.CHAT_CLOSE)
... async def closed(event): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
import string
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from omnihook.contracts import AnyEvent, EventType, MessageEvent, utc_now

__all__ = [
    "DispatchResult",
    "HandlerContext",
    "HandlerFailure",
    "HandlerFailures",
    "Router",
    "message_key",
]

logger = logging.getLogger("omnihook.receiver")

H = TypeVar("H", bound=Callable[..., Any])


class Replier(Protocol):
    """What ``HandlerContext.reply`` posts through (:class:`~omnihook.receiver.RocketChatApi`)."""

    async def send_message(
        self, room_id: str, text: str, message_id: str | None = None
    ) -> dict[str, Any]: ...


@dataclass
class HandlerContext:
    """What a handler may want to know beyond the event; a handler gets it as a second argument."""

    raw_body: bytes = b""
    """The request body exactly as received."""
    received_at: datetime = field(default_factory=utc_now)
    """When the receiver accepted the delivery."""
    stale: bool = False
    """Whether an event newer than this one was already handled for the same room."""
    attempt: int = 1
    """Which handling attempt this is (1 for the first)."""
    event_id: int | None = None
    """The event's id in the store (``None`` in inline mode)."""
    dedup_key: str = ""
    """SHA-256 of the body: the same for every delivery of the same event. Pass it to your CRM as
    an idempotency key (with your handler's name) to make a rare repeat harmless."""
    room_id: str | None = None
    source: str = "webhook"
    """Where the event came from: ``"webhook"`` (Rocket.Chat posted it) or ``"reconcile"``
    (rebuilt from Rocket.Chat's REST API because its webhook never arrived)."""
    handler: str = ""
    """The name of the handler running now (the router sets it)."""
    replier: Replier | None = None
    _replies: dict[str, int] = field(default_factory=dict, repr=False)

    async def reply(self, text: str) -> None:
        """Post ``text`` into the event's room through Rocket.Chat's REST API.

        Safe to repeat: a handler that runs again (a retry) posts the same replies with the same
        message ids, which Rocket.Chat does not post twice.
        """
        if self.replier is None:
            raise RuntimeError(
                "replies need Rocket.Chat's REST API: create_app(..., rocketchat=RocketChatApi(url, "
                "user_id, auth_token)), or a [rocketchat] block in the bridge file"
            )
        if not self.room_id:
            raise RuntimeError("this event has no room to reply into (offline messages have none)")
        number = self._replies.get(self.handler, 0)
        self._replies[self.handler] = number + 1
        key = message_key(self.dedup_key or self.room_id, self.handler, number)
        await self.replier.send_message(self.room_id, text, key)


def message_key(*parts: object) -> str:
    """A 17-character Rocket.Chat-style message id, the same for the same parts."""
    number = int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest(), "big")
    chars = []
    for _ in range(17):
        number, index = divmod(number, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[index])
    return "".join(chars)


_ID_ALPHABET = string.ascii_letters + string.digits


class PermanentError(Exception):
    """Raise it from a handler when retrying cannot help (say, the CRM rejects the data): the
    event goes to the dead letters at once instead of being retried."""


class RetryAfter(Exception):
    """Raise it from a handler to be retried no sooner than ``seconds`` from now (a rate limit
    with a known reset). It does not count against the handling policy's attempts."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds:g} s")
        self.seconds = max(0.0, seconds)


class HandlerTimeout(Exception):
    """A handler did not finish within the handling policy's timeout (it counts as failed)."""


@dataclass(frozen=True)
class HandlerFailure:
    """One handler that raised, and what it raised."""

    handler: str
    error: Exception

    def __str__(self) -> str:
        return f"{self.handler} raised {type(self.error).__name__}: {self.error}"


class HandlerFailures(Exception):
    """Some handlers failed for an event; the others still ran. ``failures`` lists each one."""

    def __init__(self, event: AnyEvent, failures: list[HandlerFailure], ran: int) -> None:
        self.event = event
        self.failures = tuple(failures)
        self.ran = ran
        room = f" (room {event.room_id})" if event.room_id else ""
        details = "; ".join(str(failure) for failure in failures)
        super().__init__(
            f"{len(failures)} of {ran} handler(s) failed for {event.type}{room}: {details}"
        )

    @property
    def handler_names(self) -> list[str]:
        """The names of the handlers that failed."""
        return [failure.handler for failure in self.failures]


@dataclass(frozen=True)
class DispatchResult:
    """What handling an event produced."""

    crm_data: dict[str, Any]
    """The mappings the handlers returned, merged in registration order."""
    handlers_run: int


@dataclass(frozen=True)
class DispatchOutcome:
    """Every handler's outcome for one event, failures included (see :meth:`Router.run`)."""

    crm_data: dict[str, Any]
    """The mappings the successful handlers returned, merged in registration order."""
    succeeded: tuple[str, ...]
    failures: tuple[HandlerFailure, ...]

    @property
    def handlers_run(self) -> int:
        return len(self.succeeded) + len(self.failures)

    @property
    def permanent(self) -> bool:
        """Whether a handler raised :class:`PermanentError`."""
        return any(isinstance(failure.error, PermanentError) for failure in self.failures)

    @property
    def retry_after(self) -> float | None:
        """The longest wait handlers asked for with :class:`RetryAfter`, if only such failures."""
        waits = [f.error.seconds for f in self.failures if isinstance(f.error, RetryAfter)]
        return max(waits) if waits and len(waits) == len(self.failures) else None


Matcher = Callable[[AnyEvent], bool]

HandlerWatch = Callable[
    [str], contextlib.AbstractContextManager[Callable[[Exception | None], None]]
]
"""Wraps one handler's run, given its name; what it yields is told how the run ended (``None``:
it succeeded). Tracing uses it for a span per handler."""


def _ignore(error: Exception | None) -> None:
    pass


_UNWATCHED: contextlib.AbstractContextManager[Callable[[Exception | None], None]] = (
    contextlib.nullcontext(_ignore)
)  # reusable: an unwatched run allocates nothing


@dataclass(frozen=True)
class _Registration:
    func: Callable[..., Any]
    name: str
    matches: Matcher
    wants_context: bool
    is_async: bool
    for_test_sample: bool = False


class Router:
    """Handlers per event type. Every matching handler runs, in the order they were registered.

    Handlers take ``(event)`` or ``(event, context)``, may be plain functions (run in a worker
    thread so they cannot stall the server) or coroutines, and may return a mapping: the merged
    mappings become the body of the 200 answer, which Rocket.Chat stores as the room's crmData.
    The admin page's Send Test sample reaches only handlers registered with :meth:`on_test`.
    """

    def __init__(self) -> None:
        self._registrations: list[_Registration] = []
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self.trigger_handler: Callable[..., Any] | None = None
        """The ``@trigger`` handler, if any (served by ``create_app`` at ``PATH/trigger``)."""

    def trigger(self, func: H) -> H:
        """Answer Livechat triggers that use an external service: ``func(request)`` gets a
        :class:`~omnihook.receiver.TriggerRequest` and returns the message(s) to show the visitor,
        or nothing for the trigger's fallback. One per router."""
        if self.trigger_handler is not None:
            raise ValueError(
                f"this router already has a trigger handler: {_name_of(self.trigger_handler)}"
            )
        self.trigger_handler = func
        return func

    def add_cleanup(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the app or worker using this router shuts down (close clients)."""
        self._cleanups.append(cleanup)

    async def aclose(self) -> None:
        """Run every cleanup (the app and ``omnihook worker`` call this on shutdown)."""
        for cleanup in self._cleanups:
            try:
                await cleanup()
            except Exception:
                logger.exception("a router cleanup failed")

    def on(self, *event_types: EventType | str) -> Callable[[H], H]:
        """Register a handler for one or several event types (``EventType`` or any name
        ``EventType.lookup`` knows: ``"LivechatSession"``, ``"Chat Close"``…)."""
        if not event_types:
            raise TypeError("Router.on() needs at least one event type; use on_any for every event")
        wanted = frozenset(_resolve(event_type) for event_type in event_types)

        def decorate(func: H) -> H:
            self._add(func, lambda event: event.event_type in wanted)
            return func

        return decorate

    def on_visitor_message(self, func: H) -> H:
        """Register a handler for messages written by the visitor (``Message`` without ``agentId``)."""
        self._add(
            func,
            lambda event: isinstance(event, MessageEvent) and event.is_visitor_message,
        )
        return func

    def on_agent_message(self, func: H) -> H:
        """Register a handler for messages written by an agent (``Message`` with ``agentId``)."""
        self._add(
            func,
            lambda event: isinstance(event, MessageEvent) and event.is_agent_message,
        )
        return func

    def on_navigation(self, func: H) -> H:
        """Register a handler for the visitor's navigation messages (``Message`` with
        ``navigation``, written by rocket.cat; sent when Rocket.Chat's two navigation settings are
        on). ``on_agent_message`` and ``on_visitor_message`` handlers do not get them."""
        self._add(
            func,
            lambda event: isinstance(event, MessageEvent) and event.is_navigation,
        )
        return func

    def on_any(self, func: H) -> H:
        """Register a handler for every event, unknown types included (not the Send Test sample)."""
        self._add(func, lambda event: True)
        return func

    def on_test(self, func: H) -> H:
        """Register a handler for the admin page's Send Test sample (which no other handler sees)."""
        self._add(func, lambda event: event.is_test, for_test_sample=True)
        return func

    def include(self, other: Router) -> None:
        """Add every handler of ``other`` after this router's own (to compose routers by module)."""
        self._registrations.extend(other._registrations)
        self._cleanups.extend(other._cleanups)
        if other.trigger_handler is not None:
            self.trigger(other.trigger_handler)

    def handlers_for(self, event: AnyEvent) -> list[str]:
        """The names of the handlers ``event`` would reach, in the order they would run."""
        return [registration.name for registration in self._matching(event)]

    def __len__(self) -> int:
        return len(self._registrations)

    async def dispatch(
        self,
        event: AnyEvent,
        context: HandlerContext | None = None,
        *,
        watch: HandlerWatch | None = None,
    ) -> DispatchResult:
        """Run every matching handler. Raises :class:`HandlerFailures` if any of them raised."""
        outcome = await self.run(event, context, watch=watch)
        if outcome.failures:
            raise HandlerFailures(event, list(outcome.failures), outcome.handlers_run)
        return DispatchResult(crm_data=outcome.crm_data, handlers_run=outcome.handlers_run)

    async def run(
        self,
        event: AnyEvent,
        context: HandlerContext | None = None,
        *,
        skip: Collection[str] = (),
        timeout: float | None = None,
        watch: HandlerWatch | None = None,
    ) -> DispatchOutcome:
        """Run every matching handler except those named in ``skip`` (they already succeeded in
        an earlier attempt), each within ``timeout`` seconds, and report each one's outcome.
        ``watch`` wraps each handler's run (tracing: a span per handler)."""
        context = context or HandlerContext()
        merged: dict[str, Any] = {}
        succeeded: list[str] = []
        failures: list[HandlerFailure] = []
        for registration in self._matching(event):
            if registration.name in skip:
                continue
            context.handler = registration.name
            with _UNWATCHED if watch is None else watch(registration.name) as ended:
                started = time.perf_counter()
                try:
                    result = await _call(registration, event, context, timeout)
                    if result is not None and not isinstance(result, Mapping):
                        raise TypeError(
                            f"returned {type(result).__name__}; a handler returns a mapping "
                            "(sent back to Rocket.Chat as crmData) or None"
                        )
                except Exception as exc:
                    ids = {
                        "event_id": context.event_id,
                        "room_id": event.room_id,
                        "event_type": event.type,
                        "handler": registration.name,
                        "attempt": context.attempt,
                        "duration": time.perf_counter() - started,
                    }
                    if isinstance(exc, RetryAfter):  # a wait (rate limit, open circuit): no fault
                        logger.info("handler %s waits for %s (room %s): %s", registration.name,
                                    event.type, event.room_id, exc, extra=ids)  # fmt: skip
                    else:
                        logger.error("handler %s failed for %s (room %s)", registration.name,
                                     event.type, event.room_id, exc_info=exc, extra=ids)  # fmt: skip
                    failures.append(HandlerFailure(registration.name, exc))
                    ended(exc)
                    continue
                ended(None)
            if result:
                merged.update(result)
            succeeded.append(registration.name)
        return DispatchOutcome(merged, tuple(succeeded), tuple(failures))

    def _matching(self, event: AnyEvent) -> list[_Registration]:
        test = event.is_test
        return [
            registration
            for registration in self._registrations
            if registration.for_test_sample == test and registration.matches(event)
        ]

    def _add(
        self,
        func: Callable[..., Any],
        matches: Matcher,
        *,
        for_test_sample: bool = False,
    ) -> None:
        if not callable(func):
            raise TypeError(f"a handler must be callable, got {func!r}")
        # Names identify handlers across attempts (which ones already succeeded): keep them unique.
        name = base = _name_of(func)
        taken = {registration.name for registration in self._registrations}
        number = 1
        while name in taken:
            number += 1
            name = f"{base}#{number}"
        self._registrations.append(
            _Registration(
                func=func,
                name=name,
                matches=matches,
                wants_context=_positional_arity(func) >= 2,
                is_async=_is_async(func),
                for_test_sample=for_test_sample,
            )
        )


def _resolve(event_type: EventType | str) -> EventType:
    return event_type if isinstance(event_type, EventType) else EventType.lookup(event_type)


async def _call(
    registration: _Registration, event: AnyEvent, context: HandlerContext, timeout: float | None
) -> Any:
    args = (event, context) if registration.wants_context else (event,)
    if timeout is None:  # inline: the request's own lifetime bounds it
        return await _invoke(registration, args)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await _invoke(registration, args)
    except TimeoutError:
        if timeout is not None and deadline.expired():
            raise HandlerTimeout(f"did not finish within {timeout:g} s") from None
        raise  # the handler's own timeout (say, its HTTP call's)


async def _invoke(registration: _Registration, args: tuple[Any, ...]) -> Any:
    if registration.is_async:
        return await registration.func(*args)
    # abandon_on_cancel: on timeout stop waiting for the thread (it cannot be killed).
    result = await anyio.to_thread.run_sync(
        functools.partial(registration.func, *args), abandon_on_cancel=True
    )
    if inspect.isawaitable(result):
        return await result
    return result


def _is_async(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - a callable object's async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _positional_arity(func: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    # Names are stored (which handlers already succeeded), so they must not depend on object ids.
    return str(name).replace("<locals>.", "") if name else type(func).__qualname__
