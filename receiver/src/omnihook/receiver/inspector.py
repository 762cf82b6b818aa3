"""The live inspector: point a real Rocket.Chat's Webhook URL at it and see, event by event,
whether its payloads keep the contract, and exactly what drifts where.

It answers like a well-behaved receiver (the status codes of the README's table) and handles
nothing. ``capture`` appends every delivery to a JSON-lines file that ``omnihook replay`` can
send again, with the token left out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnihook.contracts import TOKEN_HEADER, UnknownEvent, check_payload

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH
from .event_log import describe
from .request_body import (
    BodyTooLarge,
    body_too_large,
    content_length_and_token,
    head_problem,
    json_error,
    receive_body,
    token_check,
)
from .verification import TokenCheck, TokenVerifier

__all__ = ["create_inspector"]

_OK = b'{"ok":true}'


def create_inspector(
    tokens: list[str],
    *,
    path: str = DEFAULT_PATH,
    capture: Path | None = None,
    echo: Callable[[str], None] = print,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """An app that checks each delivery (token, JSON, contract, Rocket.Chat's exact forms) and
    ``echo``es one verdict line per event, then one line per problem or note."""
    verifier = TokenVerifier(tokens) if tokens else TokenVerifier.insecure()
    handle: TextIO | None = capture.open("a", encoding="utf-8") if capture is not None else None

    async def inspect(request: Request) -> Response:
        received = datetime.now(UTC)
        stamp = received.strftime("%H:%M:%S")
        declared, presented = content_length_and_token(request.scope["headers"])
        problem = head_problem(request.scope, declared, max_body_bytes)
        if problem is not None:
            echo(f"{stamp} ✗ {problem.status_code} {bytes(problem.body).decode()}")
            return problem
        try:
            body = await receive_body(request.receive, max_body_bytes)
        except BodyTooLarge:
            echo(f"{stamp} ✗ 413 body larger than {max_body_bytes} bytes")
            return body_too_large(max_body_bytes)
        except ClientDisconnect:
            echo(f"{stamp} ✗ the client went away before sending the whole body")
            return Response(status_code=204)  # nobody reads it: the server drops it
        # Checked after reading, unlike the webhook: a refused delivery is still worth capturing.
        token, _ = token_check(verifier, presented)
        status, answer = _verdict(body, token, verifier.is_insecure, presented, stamp, echo)
        if handle is not None:
            _capture(handle, request, body, received, status)
        return answer

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if handle is not None:
                handle.close()

    routes = [Route(path, inspect, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


def _verdict(
    body: bytes,
    token: TokenCheck,
    insecure: bool,
    presented: str | None,
    stamp: str,
    echo: Callable[[str], None],
) -> tuple[int, Response]:
    """Print the verdict on one delivery; answer as omnihook's receiver would."""
    if token is not TokenCheck.VALID:
        echo(
            f"{stamp} ✗ 401 token {token.value}: set the same Secret Token in Rocket.Chat and here"
        )
        return 401, json_error(
            401, f"{token.value}_token", f"the {TOKEN_HEADER} header is {token.value}"
        )
    check = check_payload(body)
    event = check.event
    if event is None:
        assert check.error is not None
        reason = check.error.reason
        status = 422 if reason == "contract" else 400
        what = {"not_json": "not JSON", "not_object": "not a JSON object"}.get(
            reason, "breaks the contract"
        )
        echo(f"{stamp} ✗ {status} {check.error.event_type or 'payload'}: {what}")
        for line in check.lines():
            echo(f"    {line}")
        error = {"not_json": "invalid_json", "not_object": "not_an_object"}.get(
            reason, "contract_violation"
        )
        problems = [{"path": p.path, "message": p.message} for p in check.problems]
        return status, json_error(status, error, check.error.summary(), problems=problems)
    token_note = ""
    if insecure:
        token_note = " (no token checked; Rocket.Chat sent one)" if presented else " (no token)"
    if isinstance(event, UnknownEvent):
        echo(
            f"{stamp} ! {event.type} room={event.room_id or '-'}: unknown event type (a newer Rocket.Chat?){token_note}"
        )
        return 200, Response(_OK, media_type="application/json")
    if event.is_test:
        echo(f"{stamp} ✓ Send Test sample: Rocket.Chat reaches this URL{token_note}")
    elif not check.ok:
        echo(f"{stamp} ✗ {describe(event)} — drifts from the contract{token_note}")
    elif check.notes:
        echo(f"{stamp} ! {describe(event)} — ok, with notes{token_note}")
    else:
        echo(f"{stamp} ✓ {describe(event)} — ok{token_note}")
    for line in check.lines():
        echo(f"    {line}")
    return 200, Response(_OK, media_type="application/json")


def _capture(
    handle: TextIO, request: Request, body: bytes, received: datetime, status: int
) -> None:
    headers = {
        key: ("<redacted>" if key == TOKEN_HEADER.lower() else value)
        for key, value in request.headers.items()
    }
    record: dict[str, Any] = {"received_at": received.isoformat(), "path": request.url.path, "headers": headers,
                              "status": status}  # fmt: skip
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        record["body_base64"] = base64.b64encode(body).decode()
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
