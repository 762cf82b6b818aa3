"""OpenTelemetry traces (the ``otel`` extra), recorded with the SDK's in-memory exporter: one
trace from Rocket.Chat's request through the stored event to each handler and CRM call, carried
from the receiver to the worker by the store alone; and nothing at all while tracing is off."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from omnihook.contracts import EventType, LivechatSession, samples
from omnihook.receiver import TOKEN_HEADER, Router, Worker, create_app
from omnihook.receiver.crm import HttpForwardAdapter
from omnihook.receiver.ops import tracing
from omnihook.receiver.ops.tracing import TRACING, configure_tracing
from omnihook.store import Store, StoreUnavailable

TOKEN = "tracing-token"
CLOSE = json.dumps(samples.sample("chat-close")).encode()
ROOM = samples.sample("chat-close")["_id"]


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no OTEL_* variable and no global tracer provider, and leaves the
    process as it found it (the global provider can be set once per process: reset by hand)."""
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
    try:
        yield
    finally:
        installed = trace._TRACER_PROVIDER
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved
        if isinstance(installed, TracerProvider):
            installed.shutdown()
        TRACING.refresh()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """A tracer provider installed as the user's code would, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def crm(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return httpserver


def bridge(url: str, seen: list[str] | None = None) -> Router:
    """A router with a handler and a CRM adapter, built afresh for each side (nothing shared)."""
    router = Router()

    @router.on(EventType.CHAT_CLOSE)
    async def record(event: LivechatSession) -> None:
        if seen is not None:
            seen.append(event.type)

    HttpForwardAdapter("forward", url=url, attempts=1, delay=0).register(router)
    return router


async def post(
    router: Router, store: Store | None, body: bytes = CLOSE, **headers: str
) -> httpx.Response:
    app = create_app(router, tokens=[TOKEN], store=store, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        return await client.post(
            "/rocketchat", content=body, headers={TOKEN_HEADER: TOKEN, **headers}
        )


async def drain(store_url: str, url: str) -> int:
    """Handle what is stored, as an ``omnihook worker`` process would: its own store object,
    its own router; only the database connects it to the receiver."""
    async with Store.open(store_url) as other:
        router = bridge(url)
        try:
            return await Worker(other, router, name="another-process").drain()
        finally:
            await router.aclose()


def by_name(spans: Any) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]
    return named


def traceparent(span: ReadableSpan) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        yield store


async def test_one_trace_from_the_request_to_the_crm_call(
    store_url: str, store: Store, exporter: InMemorySpanExporter, crm: HTTPServer
) -> None:
    url = crm.url_for("/hook")
    response = await post(bridge(url), store)
    assert response.status_code == 200
    received = by_name(exporter.get_finished_spans())
    assert set(received) == {"POST /rocketchat", "store accept"}
    exporter.clear()  # the worker's side starts from nothing in memory

    assert await drain(store_url, url) == 1
    handled = by_name(exporter.get_finished_spans())
    assert set(handled) == {
        "handle LivechatSession", "handler bridge.record", "handler crm:forward", "POST /hook",
    }  # fmt: skip

    request, accept = received["POST /rocketchat"], received["store accept"]
    handling, record = handled["handle LivechatSession"], handled["handler bridge.record"]
    forward, call = handled["handler crm:forward"], handled["POST /hook"]
    spans = [request, accept, handling, record, forward, call]
    assert len({span.context.trace_id for span in spans}) == 1
    assert request.parent is None
    assert parent_of(accept) == request.context.span_id
    assert parent_of(handling) == accept.context.span_id
    assert handling.parent is not None
    assert handling.parent.is_remote  # from the stored context, not from this process
    assert parent_of(record) == handling.context.span_id
    assert parent_of(forward) == handling.context.span_id
    assert parent_of(call) == forward.context.span_id
    assert [span.kind for span in spans] == [SpanKind.SERVER, SpanKind.PRODUCER,
        SpanKind.CONSUMER, SpanKind.INTERNAL, SpanKind.INTERNAL, SpanKind.CLIENT]  # fmt: skip
    assert all(span.status.status_code is StatusCode.UNSET for span in spans)

    assert dict(request.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/rocketchat",
        "http.route": "/rocketchat",
        "url.scheme": "http",
        "http.response.status_code": 200,
        "omnihook.event.type": "LivechatSession",
        "omnihook.room.id": ROOM,
        "omnihook.event.id": 1,
        "omnihook.dedup": "new",
    }
    assert (accept.attributes or {})["omnihook.dedup"] == "new"
    assert {key: (handling.attributes or {})[key] for key in
            ("omnihook.event.id", "omnihook.attempt", "omnihook.outcome", "omnihook.worker")} == {
        "omnihook.event.id": 1, "omnihook.attempt": 1, "omnihook.outcome": "done",
        "omnihook.worker": "another-process",
    }  # fmt: skip
    attributes = dict(call.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["http.response.status_code"] == 200
    assert attributes["omnihook.crm.adapter"] == "forward"
    # The CRM call carries the trace on (a service of your own behind HttpForwardAdapter).
    [(forwarded, _)] = crm.log
    assert forwarded.headers["traceparent"] == traceparent(call)


async def test_a_traceparent_on_the_request_is_the_parent(
    store: Store, exporter: InMemorySpanExporter, crm: HTTPServer
) -> None:
    trace_id, span_id = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-01"
    assert (await post(bridge(crm.url_for("/hook")), store, traceparent=traceparent)).is_success
    request = by_name(exporter.get_finished_spans())["POST /rocketchat"]
    assert request.context.trace_id == trace_id
    assert parent_of(request) == span_id


async def test_a_duplicate_is_traced_but_handled_in_the_first_delivery_s_trace(
    store_url: str, store: Store, exporter: InMemorySpanExporter, crm: HTTPServer
) -> None:
    url = crm.url_for("/hook")
    await post(bridge(url), store)
    await post(bridge(url), store)
    requests = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert [(span.attributes or {})["omnihook.dedup"] for span in requests] == ["new", "duplicate"]
    first = requests[0].context.trace_id
    exporter.clear()
    assert await drain(store_url, url) == 1
    assert {span.context.trace_id for span in exporter.get_finished_spans()} == {first}


async def test_a_failing_crm_call_marks_its_spans(
    store_url: str, store: Store, exporter: InMemorySpanExporter, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    url = httpserver.url_for("/hook")
    await post(bridge(url), store)
    exporter.clear()
    assert await drain(store_url, url) == 1
    spans = by_name(exporter.get_finished_spans())
    call, forward = spans["POST /hook"], spans["handler crm:forward"]
    handling, record = spans["handle LivechatSession"], spans["handler bridge.record"]
    assert (call.attributes or {})["http.response.status_code"] == 503
    assert call.status.status_code is StatusCode.ERROR
    assert forward.status.status_code is StatusCode.ERROR
    assert [event.name for event in forward.events] == ["exception"]
    assert (forward.attributes or {})["error.type"] == "CrmTransientError"
    assert record.status.status_code is StatusCode.UNSET  # the other handler succeeded
    assert handling.status.status_code is StatusCode.ERROR
    assert (handling.attributes or {})["omnihook.outcome"] == "failed"


async def test_an_unreachable_crm_marks_the_client_span(
    store_url: str, store: Store, exporter: InMemorySpanExporter
) -> None:
    from ..conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens
    await post(bridge(url), store)
    exporter.clear()
    await drain(store_url, url)
    call = by_name(exporter.get_finished_spans())["POST /hook"]
    assert call.status.status_code is StatusCode.ERROR
    assert (call.attributes or {})["error.type"] == "CrmTransientError"
    assert "http.response.status_code" not in (call.attributes or {})


async def test_without_a_store_handlers_run_inside_the_request_span(
    exporter: InMemorySpanExporter, crm: HTTPServer
) -> None:
    assert (await post(bridge(crm.url_for("/hook")), None)).status_code == 200
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "POST /rocketchat",
        "handler bridge.record",
        "handler crm:forward",
        "POST /hook",
    }
    request = spans["POST /rocketchat"]
    assert parent_of(spans["handler bridge.record"]) == request.context.span_id
    assert parent_of(spans["POST /hook"]) == spans["handler crm:forward"].context.span_id


async def test_a_5xx_answer_marks_the_request_span(
    store: Store, exporter: InMemorySpanExporter, crm: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gone(record: object) -> None:
        raise StoreUnavailable("the database went away")

    monkeypatch.setattr(store.events, "accept", gone)  # 503: Rocket.Chat retries
    response = await post(bridge(crm.url_for("/hook")), store)
    assert response.status_code == 503
    request = by_name(exporter.get_finished_spans())["POST /rocketchat"]
    assert (request.attributes or {})["http.response.status_code"] == 503
    assert request.status.status_code is StatusCode.ERROR
    accept = by_name(exporter.get_finished_spans())["store accept"]
    assert accept.status.status_code is StatusCode.ERROR
    assert "the database went away" in (accept.status.description or "")


async def test_tracing_off_makes_no_span_and_stores_no_context(
    store_url: str, store: Store, crm: HTTPServer
) -> None:
    url = crm.url_for("/hook")
    seen: list[str] = []
    assert (await post(bridge(url, seen), store)).status_code == 200
    assert not TRACING.on
    async with Store.open(store_url) as other:
        [claimed] = await other.events.claim("w", 1, 30, now=2e9)
        assert claimed.trace_context is None
        await other.events.release("w", [claimed.id])
    router = bridge(url, seen)
    assert await Worker(store, router).drain() == 1
    await router.aclose()
    assert seen == ["LivechatSession"]
    [(forwarded, _)] = crm.log
    assert "traceparent" not in forwarded.headers


_UNTRACED_RUN = """
import asyncio, json, sys
import httpx
from omnihook.contracts import samples
from omnihook.receiver import TOKEN_HEADER, Router, Worker, create_app
from omnihook.store import Store

async def main():
    async with Store.open(sys.argv[1]) as store:
        router = Router()
        router.on_any(lambda event: None)
        app = create_app(router, tokens=["t0ken-t0ken"], store=store, run_worker=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            body = json.dumps(samples.sample("chat-close"))
            response = await client.post("/rocketchat", content=body,
                                         headers={TOKEN_HEADER: "t0ken-t0ken"})
        print(response.status_code, await Worker(store, router).drain())
    print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))

asyncio.run(main())
"""


def test_off_opentelemetry_is_not_even_imported(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    done = subprocess.run([sys.executable, "-c", _UNTRACED_RUN, url], env=environment,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.splitlines() == ["200 1", "[]"]


async def test_otel_sdk_disabled_turns_an_installed_provider_off(
    store_url: str,
    store: Store,
    exporter: InMemorySpanExporter,
    crm: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    url = crm.url_for("/hook")
    assert (await post(bridge(url), store)).status_code == 200
    assert await drain(store_url, url) == 1
    assert not TRACING.on
    assert exporter.get_finished_spans() == ()


async def test_the_stored_context_is_the_store_span_s_traceparent(
    store_url: str, store: Store, exporter: InMemorySpanExporter, crm: HTTPServer
) -> None:
    await post(bridge(crm.url_for("/hook")), store)
    accept = by_name(exporter.get_finished_spans())["store accept"]
    [claimed] = await store.events.claim("w", 1, 30, now=2e9)
    assert claimed.trace_context == traceparent(accept)


# -- configure_tracing: the OTEL_* rule ---------------------------------------------------------


def installed() -> Any:
    return trace.get_tracer_provider()


def test_nothing_configured_leaves_tracing_off() -> None:
    assert configure_tracing() is False
    assert not TRACING.on
    assert isinstance(installed(), trace.ProxyTracerProvider)


@pytest.mark.parametrize(
    ("variables", "on"),
    [
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SERVICE_NAME": "bridge"}, False),  # naming the service asks for no exporter
    ],
)
def test_the_otel_variables_turn_tracing_on(
    variables: dict[str, str], on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert configure_tracing() is on
    assert TRACING.on is on
    assert isinstance(installed(), TracerProvider) is on


def test_otlp_goes_over_http_and_the_service_is_omnihook_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert isinstance(tracing._exporter("otlp"), OTLPSpanExporter)
    assert configure_tracing()
    assert installed().resource.attributes[SERVICE_NAME] == "omnihook"


def test_otel_service_name_names_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "crm-bridge")
    assert configure_tracing()
    assert installed().resource.attributes[SERVICE_NAME] == "crm-bridge"


def test_a_provider_installed_by_the_user_is_kept(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = installed()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert configure_tracing()
    assert installed() is provider


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "no trace exporter named 'otlp_proto_grpc' is installed"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
         "OTLP protocol 'http/json' is not supported"),
        ({"OTEL_TRACES_EXPORTER": "jaeger-of-old"},
         "no trace exporter named 'jaeger-of-old' is installed"),
    ],
)  # fmt: skip
def test_a_misconfiguration_is_logged_and_tracing_stays_off(
    variables: dict[str, str],
    complaint: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.ERROR, logger="omnihook.receiver"):
        assert configure_tracing() is False
    assert complaint in caplog.text
    assert "no traces" in caplog.text
    assert isinstance(installed(), trace.ProxyTracerProvider)


def test_crm_errors_on_spans_are_redacted(exporter: InMemorySpanExporter) -> None:
    from omnihook.store import register_secret

    register_secret("pat-na1-secret-0123456789")
    assert TRACING.refresh()
    with pytest.raises(RuntimeError), tracing._current("x"):
        raise RuntimeError("HTTP 401: echo Authorization: Bearer pat-na1-secret-0123456789")
    [span] = exporter.get_finished_spans()
    assert "pat-na1" not in (span.status.description or "")
    [event] = span.events
    assert "pat-na1" not in str(dict(event.attributes or {}))
