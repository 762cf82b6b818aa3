"""``create_app``: the webhook endpoint as a Starlette app, to run or to mount in your own app.

The request travels one way: body limit → token → parse → (store →) answer. Without a store the
handlers run before the answer ("inline"); with one, the answer follows the durable write and a
worker runs the handlers. Each failure has its status (see the README's table) and a JSON body
``{"error": ..., "detail": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from omnihook.contracts import AnyEvent, ContractError, parse_event
from omnihook.store import (
    Store,
    StoreError,
    StoreRejected,
    StoreUnavailable,
    register_secret,
    storable_text,
)

from .delivery import previous_crm_data, stored_delivery
from .ops import tracing
from .ops.metrics import METRICS, exposition
from .ops.tracing import TRACING
from .request_body import (
    BodyTooLarge,
    body_too_large,
    content_length_and_token,
    head_problem,
    json_error,
    log_disconnect,
    read_limited_body,
    receive_body,
    token_check,
)
from .rest import RocketChatApi
from .router import HandlerContext, HandlerFailures, Router
from .triggers import TriggerService
from .verification import TOKEN_HEADER, TokenCheck, TokenVerifier
from .worker import DEFAULT_CONCURRENCY, HandlingPolicy, Worker

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PATH",
    "BodyTooLarge",
    "create_app",
    "json_error",
    "read_limited_body",
]

logger = logging.getLogger("omnihook.receiver")

DEFAULT_PATH = "/rocketchat"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_PROBLEMS_SHOWN = 20
_OK_BODY = b'{"ok":true}'


def create_app(
    router: Router,
    tokens: Iterable[str] | None = None,
    *,
    path: str = DEFAULT_PATH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    insecure_no_token: bool = False,
    store: Store | str | None = None,
    run_worker: bool = True,
    handling: HandlingPolicy | None = None,
    worker_concurrency: int = DEFAULT_CONCURRENCY,
    shutdown_grace: float = 10.0,
    rocketchat: RocketChatApi | None = None,
    trigger_path: str | None = None,
    trigger_timeout: float = 5.0,
    background: Iterable[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
    metrics_path: str | None = None,
    metrics_token: str | None = None,
) -> Starlette:
    """A Starlette app that receives Rocket.Chat's webhook at ``POST path`` and runs ``router``.

    ``tokens`` are the accepted values of ``X-RocketChat-Livechat-Token`` (several for rotation);
    at least one is required unless ``insecure_no_token=True``.

    Without ``store`` (the default) handlers run before the answer. With a ``store`` (a
    :class:`~omnihook.store.Store` or a URL such as ``sqlite:///./omnihook.db``) each delivery is
    committed before the 200, duplicates are answered like the first delivery, and a worker
    started with the app (unless ``run_worker=False``) handles events by ``handling`` policy,
    ``worker_concurrency`` at a time; on shutdown it gets ``shutdown_grace`` seconds to finish.

    ``rocketchat`` (a :class:`~omnihook.receiver.RocketChatApi`) lets handlers answer in the chat
    with ``context.reply(text)``. A router with a ``@router.trigger`` handler is also served at
    ``trigger_path`` (default ``PATH/trigger``) for Livechat triggers, ``trigger_timeout`` seconds
    per answer. ``background`` jobs run for the app's life, each given an event set at
    shutdown (continuous reconcile: ``ReconcileLoop.run``). ``GET /healthz`` answers
    ``{"status": "ok"}``, with a store only if a write
    succeeds within 3 s (else 503 and the kind of trouble; the cause is logged). Every ``POST``
    endpoint refuses a token header sent twice, and HTTP/1.0 without a length. Mount the result
    in FastAPI or Starlette with ``app.mount("/hooks", ...)``. With a global OpenTelemetry tracer
    provider installed, each delivery is traced to its handlers and CRM calls
    (:mod:`omnihook.receiver.ops.tracing`).
    """
    token_list = list(tokens or [])
    register_secret(*token_list)  # never in a recorded error or a log line
    if token_list:
        verifier = TokenVerifier(token_list)
    elif insecure_no_token:
        verifier = TokenVerifier.insecure()
    else:
        raise ValueError(
            "create_app needs at least one token (the Secret Token of Rocket.Chat's "
            "Omnichannel > Webhooks page), or insecure_no_token=True to accept any request"
        )
    if max_body_bytes <= 0:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    if metrics_path is not None and not metrics_path.startswith("/"):
        raise ValueError(f"metrics_path must start with '/', got {metrics_path!r}")
    if metrics_token:
        register_secret(metrics_token)
    TRACING.refresh()

    owned_store = isinstance(store, str)
    durable = Store(store) if isinstance(store, str) else store
    worker = (
        Worker(
            durable,
            router,
            policy=handling,
            concurrency=worker_concurrency,
            rocketchat=rocketchat,
            # Its own accepts wake it; the watch's thread would cost the server about 1.5 %
            # of its CPU at 500 events/s (py-spy) for events other processes store.
            watch_store=False,
        )
        if durable is not None and run_worker
        else None
    )
    endpoint = _WebhookEndpoint(router, verifier, max_body_bytes, durable, worker, rocketchat)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running: asyncio.Task[None] | None = None
        TRACING.refresh()  # a tracer provider installed after create_app
        if durable is not None:
            try:
                await durable.check_writable()
            except StoreError as exc:  # keep serving: 503s until the store is back
                logger.error("store cannot take deliveries, answering 503 until it can: %s", exc)
        if worker is not None:
            running = asyncio.create_task(worker.run(), name="omnihook-worker")
        stop = asyncio.Event()
        jobs: list[asyncio.Task[None]] = [asyncio.create_task(job(stop)) for job in background]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*jobs, return_exceptions=True)
            if worker is not None and running is not None:
                await worker.stop(shutdown_grace)
                await running
            await router.aclose()
            if rocketchat is not None:
                await rocketchat.aclose()
            if durable is not None and owned_store:
                await durable.close()

    routes = [
        Route(path, endpoint.handle, methods=["POST"]),
        Route("/healthz", endpoint.healthz, methods=["GET"]),
    ]
    if router.trigger_handler is not None:
        service = TriggerService(router.trigger_handler, trigger_timeout)

        async def trigger(request: Request) -> Response:
            refused = endpoint.refuse_head(request)
            if refused is not None:
                return refused
            try:
                body = await receive_body(request.receive, max_body_bytes)
            except BodyTooLarge:
                return body_too_large(max_body_bytes)
            except ClientDisconnect:
                log_disconnect(request.scope)
                return Response(status_code=204)  # nobody reads it: the server drops it
            return await service.answer(body)

        trigger_path = trigger_path or f"{path.rstrip('/')}/trigger"
        routes.append(Route(trigger_path, trigger, methods=["POST"]))
    if metrics_path is not None:
        routes.append(Route(metrics_path, _metrics_endpoint(durable, metrics_token),
                            methods=["GET"]))  # fmt: skip
    labels = {path: "webhook", "/healthz": "healthz"}
    if trigger_path is not None and router.trigger_handler is not None:
        labels[trigger_path] = "trigger"
    if metrics_path is not None:
        labels[metrics_path] = "metrics"
    app = _ReceiverApp(
        endpoint,
        path,
        labels,
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.router = router
    app.state.store = durable
    app.state.worker = worker
    app.state.webhook_path = path
    app.state.endpoint = endpoint  # framework adapters answer through it
    return app


class _ReceiverApp(Starlette):
    """Starlette, with the webhook's ``POST`` taken straight to its endpoint.

    Routing and the middleware stack cost about as much as the rest of a small event's request;
    every other request (health, trigger, wrong method or path, lifespan) goes through Starlette.
    """

    def __init__(
        self, endpoint: _WebhookEndpoint, path: str, labels: Mapping[str, str], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._endpoint = endpoint
        self._webhook_path = path
        self._labels = labels  # path -> the route label of omnihook_http_requests_total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # mounted in another app
            path = path[len(root) :]
        if scope["method"] == "POST" and path == self._webhook_path:
            scope["app"] = self
            if TRACING.on:  # off: this check is all tracing costs a request
                with tracing.request_span(scope, self._webhook_path) as span:
                    await self._webhook(scope, receive, send, span)
            else:
                await self._webhook(scope, receive, send, None)
            return
        await super().__call__(scope, receive, _counting(send, self._labels.get(path, "other")))

    async def _webhook(self, scope: Scope, receive: Receive, send: Send, span: Span | None) -> None:
        """The webhook's way; ``span``: the request's, when tracing is on."""
        try:
            response = await self._endpoint.handle(Request(scope, receive), span)
        except ClientDisconnect:
            log_disconnect(scope)  # nobody to answer: Rocket.Chat gave up on its side
            if span is not None:
                tracing.request_dropped(span)
            return
        except Exception:
            logger.exception("the webhook endpoint failed")
            response = json_error(500, "internal_error", "see the receiver's log")
        if span is not None:
            tracing.request_answered(span, response.status_code)
        METRICS.answered("webhook", response.status_code, response.body)
        await response(scope, receive, send)


class _WebhookEndpoint:
    def __init__(
        self,
        router: Router,
        verifier: TokenVerifier,
        max_body_bytes: int,
        store: Store | None,
        worker: Worker | None,
        rocketchat: RocketChatApi | None = None,
    ) -> None:
        self.rocketchat = rocketchat
        self.router = router
        self.verifier = verifier
        self.max_body_bytes = max_body_bytes
        self.store = store
        self.worker = worker
        self._health_problem: str | None = None

    def refuse_head(self, request: Request) -> Response | None:
        """The answer for a request refused on its head (length, token), else ``None``."""
        declared, token = content_length_and_token(request.scope["headers"])
        problem = head_problem(request.scope, declared, self.max_body_bytes)
        if problem is not None:
            return problem
        check, several = token_check(self.verifier, token)
        if check is not TokenCheck.VALID:
            return self._unauthorized(request, check, several=several)
        return None

    async def read(self, request: Request) -> tuple[AnyEvent, bytes] | Response:
        """The delivery's event and its bytes, or the answer refusing it (length, token, body
        size, contract): what every framework adapter checks before handling."""
        refused = self.refuse_head(request)
        if refused is not None:
            return refused
        try:
            body = await receive_body(request.receive, self.max_body_bytes)
        except BodyTooLarge:
            return body_too_large(self.max_body_bytes)
        try:
            return parse_event(body), body
        except ContractError as exc:
            return self._rejected(exc)

    async def handle(self, request: Request, span: Span | None = None) -> Response:
        """The answer to a webhook delivery; ``span``: the request's, when tracing is on."""
        read = await self.read(request)
        if isinstance(read, Response):
            return read
        event, body = read
        if span is not None:
            tracing.request_event(span, event)

        if event.is_test and self.store is not None:
            # Send Test must prove the whole path: "It works" only if a delivery could be kept.
            try:
                await self.store.check_writable()
            except StoreError as exc:
                return self._store_unavailable(exc)
        if self.store is None or event.is_test:
            return await self._handle_inline(event, body, span)
        return await self._store(event, body, span)

    async def _handle_inline(self, event: AnyEvent, body: bytes, span: Span | None) -> Response:
        context = HandlerContext(raw_body=body, dedup_key=hashlib.sha256(body).hexdigest(),
                                 room_id=event.room_id, replier=self.rocketchat)  # fmt: skip
        try:
            watch = None if span is None else tracing.handler_span
            result = await self.router.dispatch(event, context, watch=watch)
        except HandlerFailures as exc:
            return _handler_failed(exc)
        METRICS.event(event.type, duplicate=False)
        if event.is_test:
            # The router gave the sample to `on_test` handlers only; nothing reached a CRM.
            logger.info("Send Test sample received: Rocket.Chat can reach this receiver")
            return Response(_OK_BODY, media_type="application/json")
        return _accepted(event, result.crm_data)

    async def _store(self, event: AnyEvent, body: bytes, span: Span | None) -> Response:
        assert self.store is not None
        new_event = stored_delivery(event, body)
        started = time.perf_counter()
        try:
            await self.store.connect()
            if span is None:
                accepted = await self.store.events.accept(new_event)
            else:
                accepted = await tracing.accept_traced(self.store.events, new_event)
                tracing.request_stored(span, accepted)
        except StoreRejected as exc:
            logger.error(
                "the store refused a %s delivery (room %s, %d bytes, dedup key %s), answering "
                "422: %s", event.type, event.room_id, len(body), new_event.dedup_key, exc,
            )  # fmt: skip
            return json_error(
                422,
                "unstorable",
                "the store refused this delivery's data; see the receiver's log",
            )
        except StoreError as exc:
            return self._store_unavailable(exc)
        except Exception as exc:  # a store may fail in ways nobody foresaw: still not a 500
            logger.exception("storing a %s delivery failed", event.type)
            return self._store_unavailable(exc)
        METRICS.commit_accept.observe(time.perf_counter() - started)
        if self.worker is not None and not accepted.duplicate:
            self.worker.accepted(accepted.event_id, new_event.dedup_key, event)
        METRICS.event(event.type, duplicate=accepted.duplicate)
        if accepted.duplicate:
            logger.info(
                "duplicate delivery of event %d (%s) answered again", accepted.event_id, event.type
            )
        return Response(accepted.answer.encode(), media_type="application/json")

    def _store_unavailable(self, exc: Exception) -> Response:
        logger.error("store unavailable, answering 503 so that Rocket.Chat retries: %s", exc)
        return json_error(
            503,
            "store_unavailable",
            "the receiver cannot store the event right now; Rocket.Chat will retry",
        )

    async def healthz(self, request: Request) -> Response:
        """200 when the receiver can take a delivery: with a store, only if a write succeeds
        within its deadline (not a ping: a full disk or a revoked privilege still answers pings)."""
        if self.store is None:
            return JSONResponse({"status": "ok"})
        try:
            await self.store.check_writable()
        except Exception as exc:  # whatever breaks, a health check answers
            cause = exc.cause if isinstance(exc, StoreUnavailable) else "unavailable"
            self._health_changed(f"store cannot write, /healthz answers 503: {exc}")
            # Only the kind of trouble: this endpoint needs no token, the details are logged.
            return JSONResponse(
                {"status": "unavailable", "store": "cannot write", "reason": cause},
                status_code=503,
            )
        self._health_changed(None)
        return JSONResponse({"status": "ok", "store": "ok"})

    def _health_changed(self, problem: str | None) -> None:
        # Health checks come every few seconds: log when the verdict changes, not each time.
        if problem == self._health_problem:
            return
        if problem is None:
            logger.info("store writable again: /healthz answers 200")
        else:
            logger.error("%s", problem)
        self._health_problem = problem

    def _unauthorized(
        self, request: Request, check: TokenCheck, *, several: bool = False
    ) -> Response:
        client = request.client.host if request.client else "unknown"
        if several:
            logger.warning("rejected a delivery from %s: several token headers", client)
            detail = f"several {TOKEN_HEADER} headers; send exactly one"
            return json_error(401, "invalid_token", detail)
        logger.warning("rejected a delivery from %s: token %s", client, check.value)
        if check is TokenCheck.MISSING:
            detail = (
                f"the {TOKEN_HEADER} header is missing or empty; set the same Secret Token in "
                "Rocket.Chat (Omnichannel > Webhooks) and in this receiver"
            )
            return json_error(401, "missing_token", detail)
        detail = f"the {TOKEN_HEADER} header does not match any token this receiver accepts"
        return json_error(401, "invalid_token", detail)

    def _rejected(self, exc: ContractError) -> Response:
        logger.warning("rejected a delivery: %s", exc.summary())
        if exc.reason == "not_json":
            return json_error(
                400, "invalid_json", f"the body is not JSON: {exc.problems[0].message}"
            )
        if exc.reason == "not_object":
            return json_error(400, "not_an_object", exc.problems[0].message)
        problems = [
            {"path": p.path, "message": p.message} for p in exc.problems[:_MAX_PROBLEMS_SHOWN]
        ]
        return json_error(
            422,
            "contract_violation",
            exc.summary(),
            problems=problems,
            type=exc.event_type,
        )


def _accepted(event: AnyEvent, handler_results: dict[str, Any]) -> Response:
    # Rocket.Chat replaces the room's crmData with every 200 body. Start from what it sent us, so
    # ids stored by an earlier answer survive events whose handlers return nothing.
    body: dict[str, Any] = {}
    previous = previous_crm_data(event)
    if isinstance(previous, Mapping):
        body.update(previous)
    body.update(handler_results)
    if not body:
        return Response(_OK_BODY, media_type="application/json")
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        encoded = storable_text(text).encode()
    except (TypeError, ValueError) as exc:
        logger.error("handler results for %s are not JSON: %s", event.type, exc)
        return json_error(
            500, "handler_failed", f"the handlers' results cannot be sent as JSON: {exc}"
        )
    return Response(encoded, media_type="application/json")


def _handler_failed(exc: HandlerFailures) -> Response:
    failed = ", ".join(
        f"{failure.handler} ({type(failure.error).__name__})" for failure in exc.failures
    )
    detail = (
        f"{len(exc.failures)} of {exc.ran} handler(s) failed: {failed}; "
        "see the receiver's log (Rocket.Chat will retry)"
    )
    return json_error(500, "handler_failed", detail, handlers=exc.handler_names)


def _metrics_endpoint(
    store: Store | None, token: str | None
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, expected):
                return json_error(401, "invalid_token", "metrics need 'Authorization: Bearer …'")
        body, content_type = await exposition(store)
        return Response(body, headers={"Content-Type": content_type})

    return metrics


def _counting(send: Send, route: str) -> Send:
    """``send``, counting the answer in ``omnihook_http_requests_total`` (every route but the
    webhook's, which counts its own answer)."""
    status = 0

    async def counted(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body" and status:
            METRICS.answered(route, status, message.get("body", b""))
            status = 0
        await send(message)

    return counted


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback; the client gets JSON like every other answer.
    return json_error(500, "internal_error", "see the receiver's log")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "not_found", 405: "method_not_allowed"}
    detail = {
        404: f"nothing at {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    response = json_error(exc.status_code, names.get(exc.status_code, "http_error"), detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response
