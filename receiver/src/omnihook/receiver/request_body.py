"""What every ``POST`` endpoint of the receiver (webhook, trigger, inspector) does before it has
a body to look at: check the request's head, then read the body within its limit.

>>> problem = head_problem(scope, declared, max_body_bytes)   # doctest: +SKIP
>>> body = await receive_body(receive, max_body_bytes)          # doctest: +SKIP

The head: a ``Content-Length`` that is one number, within the limit; HTTP/1.0 only with one (its
body would otherwise run until the client closes, which it may never do); and the token header
sent once (:func:`token_check`: two of them are refused whatever their values, never "first one
wins" for a secret).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope

from .verification import TOKEN_HEADER, TokenCheck, TokenVerifier

__all__ = [
    "BodyTooLarge",
    "body_too_large",
    "content_length_and_token",
    "head_problem",
    "json_error",
    "log_disconnect",
    "read_limited_body",
    "receive_body",
    "token_check",
]

logger = logging.getLogger("omnihook.receiver")

_TOKEN_HEADER_KEY = TOKEN_HEADER.lower().encode("latin-1")
_SEVERAL = "\x00several"  # no real header value holds NUL: it stands for "sent more than once"
_NOT_ONE_NUMBER = "\x00not one number"


class BodyTooLarge(Exception):
    """The request body is larger than the receiver accepts."""


def json_error(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    """An error answer: ``{"error": ..., "detail": ...}`` and any extra fields."""
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


def content_length_and_token(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[str | None, str | None]:
    """``(Content-Length, token)`` from raw ASGI headers, in one pass (``None`` when absent).
    Sent twice, a token comes back as a value that :func:`token_check` refuses, and a length
    with two different values as one that :func:`head_problem` refuses."""
    length = token = None
    for key, value in headers:
        if key == b"content-length":
            text = value.decode("latin-1")
            length = text if length is None or length == text else _NOT_ONE_NUMBER
        elif key == _TOKEN_HEADER_KEY:
            token = value.decode("latin-1") if token is None else _SEVERAL
    return length, token


def head_problem(scope: Scope, declared: str | None, max_body_bytes: int) -> JSONResponse | None:
    """The answer for a request whose length is wrong before any body is read, else ``None``."""
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            return json_error(400, "bad_content_length", "Content-Length is not one number")
        if _exceeds(declared, max_body_bytes):
            return body_too_large(max_body_bytes)
    elif scope.get("http_version") == "1.0":
        return json_error(411, "length_required", "an HTTP/1.0 request needs Content-Length")
    return None


def _exceeds(digits: str, limit: int) -> bool:
    # int() refuses more than 4,300 digits (a ValueError, a 500): any length that long exceeds.
    significant = digits.lstrip("0")
    return len(significant) > 18 or int(significant or "0") > limit


def body_too_large(max_body_bytes: int) -> JSONResponse:
    """The 413 answer."""
    return json_error(
        413, "body_too_large", f"the body exceeds the receiver's limit of {max_body_bytes} bytes"
    )


def token_check(verifier: TokenVerifier, token: str | None) -> tuple[TokenCheck, bool]:
    """The verdict on the token :func:`content_length_and_token` found, and whether the header
    was sent more than once (then always ``INVALID``)."""
    if token == _SEVERAL:
        return TokenCheck.INVALID, True
    return verifier.check(token), False


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refused (:class:`BodyTooLarge`) as soon as it passes ``limit`` bytes, whether
    or not ``Content-Length`` said so."""
    declared = request.headers.get("content-length")
    digits = declared is not None and declared.isascii() and declared.isdigit()
    if digits and _exceeds(str(declared), limit):
        raise BodyTooLarge
    return await receive_body(request.receive, limit)


async def receive_body(receive: Receive, limit: int) -> bytes:
    """The body from the ASGI messages themselves (Starlette's ``stream()`` adds a generator and
    its checks per chunk, a measurable share of a small event's request); raises
    :class:`BodyTooLarge` past ``limit`` and ``ClientDisconnect`` when the client goes away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def log_disconnect(scope: Scope) -> None:
    """One INFO line for a client that went away before sending its whole body."""
    client = scope.get("client")
    logger.info(
        "%s went away before sending the whole body of %s %s: nothing stored, no answer",
        client[0] if client else "a client",
        scope.get("method", ""),
        scope.get("path", ""),
    )
