"""The receiver where the store meets the wire: health that means "can write", Send Test that
proves the path, store trouble as 503 (never 500), a poison delivery among valid ones, values
the databases cannot hold, odd headers, and a client that goes away mid-body."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnihook.contracts import samples
from omnihook.receiver import TOKEN_HEADER, Router, create_app
from omnihook.receiver.inspector import create_inspector
from omnihook.store import Store, StoreRejected, bounded_key

from ..conftest import UvicornThread
from ..faults import LeastPrivilegeRole, immutable

TOKEN = "edge-store-token"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with Store.open(store_url) as store:
        store.health.max_age = 0  # every check probes (a success is otherwise kept for 1 s)
        yield store


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")


async def post(client: httpx.AsyncClient, document: Any, **headers: str) -> httpx.Response:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return await client.post("/rocketchat", content=body, headers={TOKEN_HEADER: TOKEN, **headers})


# -- health and Send Test ------------------------------------------------------------------------


async def test_a_sqlite_file_read_only_at_start_is_reported_then_used_once_writable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "omnihook.db"
    async with Store.open(sqlite_url(path)):  # an existing, migrated store
        pass
    app = create_app(Router(), tokens=[TOKEN], store=sqlite_url(path), run_worker=False)
    app.state.store.health.max_age = 0
    with immutable(path) as make_writable:
        async with app.router.lifespan_context(app), client_for(app) as client:
            # The server started on a read-only file: one line says so.
            [report] = [r for r in caplog.records if "cannot take deliveries" in r.getMessage()]
            assert report.levelno == logging.ERROR
            assert "read-only" in report.getMessage()
            health = await client.get("/healthz")
            assert health.status_code == 503
            assert health.json() == {
                "status": "unavailable",
                "store": "cannot write",
                "reason": "read-only",  # it needs no token: the kind of trouble, no details
            }
            assert f"{path} is read-only" in caplog.text  # the details are in the log
            test = await post(client, samples.sample("send-test"))
            assert (test.status_code, test.json()["error"]) == (503, "store_unavailable")
            assert (await post(client, samples.sample("chat-start"))).status_code == 503
            make_writable()  # the same server takes deliveries now, no restart
            assert (await client.get("/healthz")).json() == {"status": "ok", "store": "ok"}
            assert (await post(client, samples.sample("send-test"))).json() == {"ok": True}
            assert (await post(client, samples.sample("chat-start"))).status_code == 200


async def test_healthz_fails_while_the_role_may_not_insert_and_recovers_on_grant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with LeastPrivilegeRole() as role:
        async with Store.open(role.owner_url):
            pass
        role.grant_usage()
        async with Store.open(role.url) as store:
            store.health.max_age = 0
            app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
            async with client_for(app) as client:
                assert (await client.get("/healthz")).status_code == 200
                role.admin(
                    f'REVOKE INSERT ON ALL TABLES IN SCHEMA "{role.schema}" FROM {role.role}'
                )
                health = await client.get("/healthz")
                assert health.status_code == 503
                assert health.json()["reason"] == "permission missing"
                assert role.role not in health.text
                assert "permission denied for table events" in caplog.text
                assert "GRANT SELECT, INSERT" in caplog.text
                refused = await post(client, samples.sample("chat-start"))
                assert (refused.status_code, refused.json()["error"]) == (503, "store_unavailable")
                role.grant_usage()
                assert (await client.get("/healthz")).status_code == 200
                assert (await post(client, samples.sample("chat-start"))).status_code == 200


# -- store failures are 503 or the delivery's own 422, never 500 ------------------------------


async def test_a_store_that_refuses_a_delivery_answers_422_and_one_that_breaks_503(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
    failures: list[Exception] = [StoreRejected("refused the data: value too long"),
                                 RuntimeError("a driver bug nobody foresaw")]  # fmt: skip

    async def failing_accept(event: Any) -> Any:
        raise failures.pop(0)

    monkeypatch.setattr(store.events, "accept", failing_accept)
    async with client_for(app) as client:
        refused = await post(client, samples.sample("chat-start"))
        assert (refused.status_code, refused.json()["error"]) == (422, "unstorable")
        broken = await post(client, samples.sample("chat-start"))
        assert (broken.status_code, broken.json()["error"]) == (503, "store_unavailable")
    assert "value too long" in caplog.text
    assert "a driver bug nobody foresaw" in caplog.text


async def test_a_huge_room_id_among_63_valid_deliveries_at_once_all_get_200(store_url: str) -> None:
    async with Store.open(store_url) as store:
        app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
        with UvicornThread(app) as server:
            documents = []
            for n in range(64):
                document = samples.sample("visitor-message")
                document["messages"][0]["msg"] = f"message {n}"
                document["messages"][0]["_id"] = f"m{n}"  # 64 messages, not one 64 times
                document["_id"] = "r" * 200_000 if n == 17 else f"room-{n % 8}"
                documents.append(document)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                answers = await asyncio.gather(*(post(client, d) for d in documents))
        assert [a.status_code for a in answers] == [200] * 64
        stored = await store.events.find(limit=100)
        assert len(stored) == 64
        assert [e.room_id for e in stored if e.room_id and len(e.room_id) > 20] == [
            bounded_key("r" * 200_000)
        ]


async def test_nul_and_lone_surrogates_are_stored_and_answered_as_utf8(store: Store) -> None:
    app = create_app(Router(), tokens=[TOKEN], store=store, run_worker=False)
    document = samples.sample("visitor-message")
    document["messages"][0]["msg"] = "nul \x00 here"
    document["crmData"] = json.dumps({"contactId": "c-1", "odd": "\\ud800"}).replace(
        "\\\\ud800", "\\ud800"
    )
    async with client_for(app) as client:
        response = await post(client, document)
        assert response.status_code == 200
        assert response.content.decode("utf-8") == '{"contactId":"c-1","odd":"\ufffd"}'
        again = await post(client, document)
        assert again.content == response.content
    [stored] = await store.events.find()
    full = await store.events.get(stored.id)
    assert full is not None
    assert full.body == json.dumps(document).encode()  # the raw body, byte for byte


# -- headers -------------------------------------------------------------------------------------


def three_endpoints() -> tuple[Any, Any, list[Any]]:
    """An app with a webhook and a trigger endpoint, an inspector, and what reached handlers."""
    seen: list[Any] = []
    router = Router()
    router.on_any(seen.append)
    router.trigger(lambda request: seen.append(request) or "hi")
    return create_app(router, tokens=[TOKEN]), create_inspector([TOKEN], echo=seen.append), seen


@pytest.mark.parametrize("path", ["/rocketchat", "/rocketchat/trigger", "inspector"])
async def test_two_token_headers_are_refused_whatever_their_values(path: str) -> None:
    app, inspector, seen = three_endpoints()
    target = inspector if path == "inspector" else app
    body = json.dumps(samples.sample("chat-start")).encode()
    async with client_for(target) as client:
        for values in ([TOKEN, "wrong"], ["wrong", TOKEN], [TOKEN, TOKEN]):
            headers = [(TOKEN_HEADER, value) for value in values]
            url = "/rocketchat" if path == "inspector" else path
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_token"
            assert TOKEN not in response.text
    if path != "inspector":
        assert seen == []


async def asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes,
                    http_version: str = "1.1") -> tuple[int, dict[str, Any]]:  # fmt: skip
    """One request straight through ASGI, with headers no HTTP client would send."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": http_version,
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": headers, "client": ("127.0.0.1", 9),
             "server": ("r", 80)}  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body_out)


@pytest.mark.parametrize(
    ("length", "http_version", "status", "error"),
    [
        ([b"\xb2"], "1.1", 400, "bad_content_length"),  # "²": a digit to str.isdigit, not to int
        ([b"2", b"3"], "1.1", 400, "bad_content_length"),
        ([b"-1"], "1.1", 400, "bad_content_length"),
        ([b"9" * 5000], "1.1", 413, "body_too_large"),  # past what int() reads: not a 500
        ([b"0" * 30 + b"2"], "1.1", 200, None),
        ([], "1.0", 411, "length_required"),
    ],
)
@pytest.mark.parametrize("path", ["/rocketchat", "/rocketchat/trigger", "inspector"])
async def test_every_post_endpoint_checks_the_head_alike(
    length: list[bytes], http_version: str, status: int, error: str, path: str
) -> None:
    app, inspector, seen = three_endpoints()
    headers = [(TOKEN_HEADER.lower().encode(), TOKEN.encode())]
    headers += [(b"content-length", value) for value in length]
    target, url = (inspector, "/rocketchat") if path == "inspector" else (app, path)
    valid = {"visitorToken": "v"} if path.endswith("trigger") else samples.sample("chat-start")
    body = json.dumps(valid).encode() if error is None else b"{}"
    if error is None:  # a length with leading zeros is still that length
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).zfill(40).encode()))
    got, document = await asgi_post(target, url, headers, body, http_version)
    assert (got, document.get("error")) == (status, error)
    if path != "inspector" and error is not None:
        assert seen == []


def raw_exchange(port: int, request: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        if not read:
            return b""
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_http_1_0_without_content_length_is_411() -> None:
    app = create_app(Router(), tokens=[TOKEN])
    with UvicornThread(app) as server:
        answer = raw_exchange(
            server.port,
            b"POST /rocketchat HTTP/1.0\r\nHost: r\r\n"
            + f"{TOKEN_HEADER}: {TOKEN}\r\n\r\n".encode()
            + b'{"type": "Message"}',
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411")
    assert json.loads(body)["error"] == "length_required"


def test_a_client_that_goes_away_mid_body_is_one_info_line_and_no_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []
    router = Router()
    router.on_any(seen.append)
    app = create_app(router, tokens=[TOKEN])
    body = json.dumps(samples.sample("chat-close")).encode()
    caplog.set_level(logging.INFO)
    with UvicornThread(app) as server:
        raw_exchange(
            server.port,
            b"POST /rocketchat HTTP/1.1\r\nHost: r\r\n"
            + f"{TOKEN_HEADER}: {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2],
            read=False,
        )
        for _ in range(200):  # the server notices the close on its own schedule
            if "went away" in caplog.text:
                break
            time.sleep(0.01)
    lines = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert "nothing stored, no answer" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    assert seen == []


# -- the trigger endpoint answers only JSON, never 500 for input ------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 5000 + b"]" * 5000, 400),
        (
            b'{"visitorToken": "v", "metadata": [{"key": "k", "value": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}]}",
            400,
        ),
        (b'{"visitorToken": "v", "metadata": [{"key": "k", "value": [1, 2]}]}', 422),
        (b'{"visitorToken": "v", "metadata": [{"key": {"a": 1}}]}', 422),
        (b'{"visitorToken": "\\ud800", "metadata": [{"key": "\\udc00", "value": "x"}]}', 200),
        (b"\xff\xfe", 400),
        (
            b'{"visitorToken": "v", "metadata": [{"key": "n", "value": 0}, {"key": "b"}, '
            b'{"key": "f", "value": false}]}',
            200,
        ),
    ],
)
async def test_the_trigger_endpoint_answers_json_for_any_input(body: bytes, status: int) -> None:
    router = Router()

    @router.trigger
    def greet(request: Any) -> str:
        return f"hello {request.visitor_token} {request.metadata}"

    app = create_app(router, tokens=[TOKEN])
    async with client_for(app) as client:
        response = await client.post(
            "/rocketchat/trigger", content=body, headers={TOKEN_HEADER: TOKEN}
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    if status == 200 and b"\\ud800" in body:
        assert document["contents"][0]["msg"] == "hello \ufffd {'\ufffd': 'x'}"
    elif status == 200:
        assert document["contents"][0]["msg"] == "hello v {'n': '0', 'b': '', 'f': 'false'}"
    else:
        assert set(document) == {"error", "detail"}
