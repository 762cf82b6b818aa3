"""OpenTelemetry traces of the bridge: one trace from Rocket.Chat's request to each CRM call.

A delivery's trace: ``POST /rocketchat`` (SERVER: method, path, status, event type, room, dedup
result) → ``store accept`` (PRODUCER: the durable write). The store keeps that span's W3C
``traceparent`` with the event (``events.trace_context``), so whichever worker handles it, in
this process or in another one on another machine, continues the same trace: ``handle <type>``
(CONSUMER, one per attempt, a child of the stored context) → ``handler <name>`` (one per
handler) → ``<METHOD> <operation>`` (CLIENT, one per CRM HTTP call; its ``traceparent`` goes
out with the call). A ``traceparent`` header on the request (Rocket.Chat sends none, a proxy
might) is honoured as the parent. Without a store, handlers run inside the request's span.

When tracing is on — one rule, checked when the app or a worker is created (and by
``omnihook serve`` and ``omnihook worker`` at start, through :func:`configure_tracing`):

- never when ``OTEL_SDK_DISABLED=true``;
- when your code (or ``opentelemetry-instrument``) installed a global tracer provider: omnihook's
  spans go to it, whatever the variables say;
- else, from ``omnihook serve``/``worker``, when the ``otel`` extra is installed
  (``pip install 'omnihook-receiver[otel]'``) and an exporter is asked for:
  ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, any installed exporter's name; ``none``: off),
  or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``),
  which means ``otlp``. OTLP goes over HTTP/protobuf (the spec's default) unless
  ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL=grpc`` (then ``opentelemetry-exporter-otlp-proto-grpc``
  must be installed). The service is called ``omnihook`` unless ``OTEL_SERVICE_NAME`` (or
  ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``) says otherwise; every other standard
  variable (sampler, batching, headers, timeouts) is the SDK's.

Installing the extra alone turns nothing on. Off, every hook is one attribute check
(``TRACING.on``) and OpenTelemetry is not even imported. A tracing misconfiguration is logged,
never fatal: the receiver keeps taking deliveries.

>>> from omnihook.receiver.ops.tracing import TRACING, configure_tracing
>>> configure_tracing()   # at a process's start; False: tracing stays off
False

Error texts and exception events on spans go through :func:`~omnihook.store.redact`, like every
error omnihook records; span attributes never hold a URL's query or a request's headers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from omnihook.store import redact

if TYPE_CHECKING:
    import httpx
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from starlette.types import Scope

    from omnihook.contracts import AnyEvent
    from omnihook.store import Accepted, ClaimedEvent, EventStore, NewEvent


__all__ = ["DEFAULT_SERVICE_NAME", "TRACING", "Tracing", "configure_tracing"]

logger = logging.getLogger("omnihook.receiver")

DEFAULT_SERVICE_NAME = "omnihook"
_SCOPE = "omnihook.receiver"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


class Tracing:
    """Whether this process makes spans, and with which tracer.

    ``on`` is the one thing the request path looks at; :meth:`refresh` sets it from the global
    tracer provider (see the module's rule).
    """

    __slots__ = ("on", "tracer")

    def __init__(self) -> None:
        self.on = False
        self.tracer: Tracer | None = None

    def refresh(self) -> bool:
        """Turn tracing on if a real tracer provider is installed (and the SDK is not disabled),
        off otherwise; returns ``on``."""
        provider = None if _sdk_disabled() else _installed_provider()
        if provider is None:
            self.on, self.tracer = False, None
        else:
            self.tracer = provider.get_tracer(_SCOPE, _version())
            self.on = True
        return self.on


TRACING: Final = Tracing()
"""This process's tracing switch; the receiver's code looks at ``TRACING.on``."""


def configure_tracing() -> bool:
    """Set up tracing from the standard ``OTEL_*`` variables (``omnihook serve`` and ``worker``
    call it at start); returns whether tracing is on. A tracer provider already installed (by
    your code, by ``opentelemetry-instrument``) is used as it is."""
    if _sdk_disabled():
        return TRACING.refresh()
    if _installed_provider() is not None or not _exporter_names():
        return TRACING.refresh()
    try:
        from opentelemetry import trace
    except ImportError:
        logger.warning(_NOT_INSTALLED)
        return False
    provider = _sdk_provider()
    if provider is not None:
        trace.set_tracer_provider(provider)
    return TRACING.refresh()


_NOT_INSTALLED = (
    "OTEL_* variables ask for traces, but OpenTelemetry's SDK is not installed "
    "(pip install 'omnihook-receiver[otel]'): no traces"
)


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _installed_provider() -> TracerProvider | None:
    """The global tracer provider, if some code installed a real one (not the API's proxy or
    no-op). Looked up only if OpenTelemetry is imported already: nobody installed one otherwise."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    provider: TracerProvider = api.get_tracer_provider()
    if isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider):
        return None
    return provider


def _exporter_names() -> list[str]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not names:
        return ["otlp"] if any(os.environ.get(v, "").strip() for v in _ENDPOINT_VARIABLES) else []
    return [name for part in names.split(",") if (name := part.strip()) and name.lower() != "none"]


def _sdk_provider() -> SdkTracerProvider | None:
    """An SDK tracer provider exporting (in batches) to each exporter the variables name;
    ``None`` (logged) when the SDK is missing or no exporter could be made."""
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(_NOT_INSTALLED)
        return None
    exporters = [exporter for name in _exporter_names() if (exporter := _exporter(name))]
    if not exporters:
        logger.error("no trace exporter could be set up (see above): no traces")
        return None
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER: the SDK reads it
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_*
    return provider


def _exporter(name: str) -> SpanExporter | None:
    """The exporter an ``OTEL_TRACES_EXPORTER`` name stands for (installed exporters register
    their names as ``opentelemetry_traces_exporter`` entry points), configured by its own
    variables; ``None`` (logged) when it cannot be made."""
    if name in ("otlp", "otlp_proto_http", "otlp_proto_grpc"):
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if name == "otlp":
            if protocol not in _OTLP_BY_PROTOCOL:
                logger.error("OTLP protocol %r is not supported (http/protobuf, grpc)", protocol)
                return None
            name = _OTLP_BY_PROTOCOL[protocol]
    found = importlib.metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        hint = " (pip install opentelemetry-exporter-otlp-proto-grpc)" if "grpc" in name else ""
        logger.error("no trace exporter named %r is installed%s", name, hint)
        return None
    try:
        exporter: SpanExporter = next(iter(found)).load()()
    except Exception:
        logger.exception("the trace exporter %r could not be set up", name)
        return None
    return exporter


@functools.cache
def _version() -> str | None:
    try:
        return importlib.metadata.version("omnihook-receiver")
    except importlib.metadata.PackageNotFoundError:
        return None


def _tracer() -> Tracer:
    tracer = TRACING.tracer
    assert tracer is not None, "tracing hooks run only while TRACING.on"
    return tracer


def _failed(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed by ``error``: the exception event the SDK would add, redacted."""
    from opentelemetry.trace import Status, StatusCode

    kind = type(error).__qualname__
    message = redact(str(error))
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}" if message else kind))
    span.set_attribute("error.type", kind)
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    span.add_event(
        "exception",
        {"exception.type": kind, "exception.message": message,
         "exception.stacktrace": redact(stack)},
    )  # fmt: skip


_Kind = Literal["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]


@contextlib.contextmanager
def _current(name: str, kind: _Kind = "INTERNAL", *, parent: Context | None = None,
             attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:  # fmt: skip
    """A span made current for the block; an exception escaping it marks it failed."""
    from opentelemetry.trace import SpanKind

    with _tracer().start_as_current_span(
        name, context=parent, kind=SpanKind[kind], attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as span:  # fmt: skip
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise


# -- the request --------------------------------------------------------------------------------


def request_span(scope: Scope, route: str) -> contextlib.AbstractContextManager[Span]:
    """The SERVER span of a webhook request, current for the block; its parent is the request's
    ``traceparent`` when it has one. ``route``: the webhook's path as configured."""
    from opentelemetry import propagate

    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    route = f"{scope.get('root_path', '')}{route}"
    return _current(
        f"{scope['method']} {route}",
        "SERVER",
        parent=propagate.extract(headers),
        attributes={
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "http.route": route,
            "url.scheme": scope.get("scheme", "http"),
        },
    )


def request_event(span: Span, event: AnyEvent) -> None:
    """What the request carried: its event's type and room."""
    span.set_attribute("omnihook.event.type", event.type)
    if event.room_id is not None:
        span.set_attribute("omnihook.room.id", event.room_id)


def request_answered(span: Span, status: int) -> None:
    """The answer's status (a 5xx marks the span failed: Rocket.Chat will retry)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


def request_dropped(span: Span) -> None:
    """Rocket.Chat gave up before the answer (it will retry)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", "client_disconnected")
    span.set_status(Status(StatusCode.ERROR, "the client disconnected before the answer"))


async def accept_traced(events: EventStore, record: NewEvent) -> Accepted:
    """``events.accept(record)`` in a ``store accept`` span whose ``traceparent`` is stored with
    the event: the worker that handles it continues the trace from there."""
    import dataclasses

    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    with _current("store accept", "PRODUCER") as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        record = dataclasses.replace(record, trace_context=carrier.get("traceparent"))
        accepted = await events.accept(record)
        request_stored(span, accepted)
    return accepted


def request_stored(span: Span, accepted: Accepted) -> None:
    """What the store made of the delivery: its event id, and whether it was new."""
    span.set_attribute("omnihook.event.id", accepted.event_id)
    span.set_attribute("omnihook.dedup", "duplicate" if accepted.duplicate else "new")


# -- handling ----------------------------------------------------------------------------------


def handling_span(claimed: ClaimedEvent, worker: str) -> contextlib.AbstractContextManager[Span]:
    """The CONSUMER span of one handling attempt, a child of the context stored with the event
    (a trace of its own when none was stored: tracing was off, or reconcile rebuilt it)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = None
    if claimed.trace_context:
        parent = TraceContextTextMapPropagator().extract({"traceparent": claimed.trace_context})
    attributes: dict[str, Any] = {
        "omnihook.event.id": claimed.id,
        "omnihook.event.type": claimed.type,
        "omnihook.attempt": claimed.attempts + 1,
        "omnihook.source": claimed.source,
        "omnihook.worker": worker,
    }
    if claimed.room_id is not None:
        attributes["omnihook.room.id"] = claimed.room_id
    return _current(f"handle {claimed.type}", "CONSUMER", parent=parent, attributes=attributes)


def handling_outcome(span: Span, status: str, error: str | None, *, stale: bool = False) -> None:
    """How the attempt ended: ``done``, ``failed`` (to be retried) or ``dead``."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("omnihook.outcome", status)
    span.set_attribute("omnihook.stale", stale)
    if status != "done":
        span.set_status(Status(StatusCode.ERROR, redact(error or status)))


@contextlib.contextmanager
def handler_span(name: str) -> Iterator[Callable[[Exception | None], None]]:
    """A ``handler <name>`` span around one handler's run (:data:`~omnihook.receiver.router.
    HandlerWatch`: ``router.run(..., watch=handler_span)``)."""
    with _current(f"handler {name}", attributes={"omnihook.handler": name}) as span:

        def ended(error: Exception | None) -> None:
            if error is not None:
                _failed(span, error)
            span.set_attribute("omnihook.outcome", "failed" if error is not None else "done")

        yield ended


# -- CRM calls ---------------------------------------------------------------------------------

UNTRACED: Final = contextlib.nullcontext(None)
"""Entered instead of a span when tracing is off (``with span or UNTRACED as span``): reusable,
so the untraced path allocates nothing."""


def crm_call_span(
    adapter: str, operation: str, url: httpx.URL
) -> contextlib.AbstractContextManager[Span]:
    """The CLIENT span of one CRM HTTP call, named by its bounded operation
    (``POST /crm/v3/objects/notes/{id}``)."""
    method, _, _ = operation.partition(" ")
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "server.address": url.host,
        "omnihook.crm.adapter": adapter,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    return _current(operation, "CLIENT", attributes=attributes)


def crm_call_headers(headers: Any) -> httpx.Headers:
    """``headers`` (whatever httpx takes) with the current trace context added (the
    ``OTEL_PROPAGATORS``, W3C ``traceparent`` by default)."""
    import httpx
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    merged = httpx.Headers(headers)
    merged.update(carrier)
    return merged


def crm_call_answered(span: Span, status: int) -> None:
    """The CRM's status (4xx and 5xx mark the span failed)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
