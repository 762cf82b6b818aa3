"""Secrets never reach a stored error text, a log line or ``events show``; visitor text never
forges a log line. The CRM here is a fake that echoes every request header back, as some
gateways and error pages do."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import samples
from omnihook.contracts.cli import root
from omnihook.receiver.bridge import build_adapters, load_bridge_config
from omnihook.receiver.event_log import logging_router
from omnihook.store import protect_logging, redact, register_secret

from .conftest import Bridge, chat

FORWARD_TOKEN = "fwd-0123456789abcdef"
HUBSPOT_TOKEN = "pat-na1-11112222-3333-4444-5555-666677778888"


def echo_headers(status: int) -> object:
    def answer(request: Request) -> Response:
        headers = "\n".join(f"{key}: {value}" for key, value in request.headers.items())
        return Response(f"upstream error, you sent:\n{headers}", status=status)

    return answer


async def test_an_echoing_crm_leaves_no_secret_in_errors_logs_or_events_show(
    bridge: Bridge,
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    protect_logging([caplog.handler])
    httpserver.expect_request("/forward").respond_with_handler(echo_headers(502))
    httpserver.expect_request("/crm/v3/objects/contacts/batch/upsert").respond_with_handler(
        echo_headers(400)
    )
    config_file = tmp_path / "bridge.toml"
    config_file.write_text(
        f"""
[[crm]]
kind = "http"
url = "{httpserver.url_for("/forward")}"
token_env = "FORWARD_TOKEN"
attempts = 1

[[crm]]
kind = "hubspot"
token_env = "HUBSPOT_TOKEN"
base_url = "{httpserver.url_for("/").rstrip("/")}"
"""
    )
    monkeypatch.setenv("FORWARD_TOKEN", FORWARD_TOKEN)
    monkeypatch.setenv("HUBSPOT_TOKEN", HUBSPOT_TOKEN)
    for adapter in build_adapters(load_bridge_config(config_file), bridge.store):
        bridge.add(adapter)
    caplog.set_level(logging.INFO)
    await bridge.deliver(*chat("chat-start"))

    # Both adapters really were sent the secrets, and both echoed them back.
    sent = [dict(request.headers) for request, _ in httpserver.log]
    assert any(FORWARD_TOKEN in str(headers) for headers in sent)
    assert any(HUBSPOT_TOKEN in str(headers) for headers in sent)
    [event] = await bridge.events()
    assert event.last_error is not None
    assert "upstream error" in event.last_error  # the errors were recorded, masked
    attempts = await bridge.store.events.attempts(event.id)
    recorded = event.last_error + "".join(a.error or "" for a in attempts)
    for secret in (FORWARD_TOKEN, HUBSPOT_TOKEN):
        assert secret not in recorded
        assert secret not in caplog.text
    assert "***" in recorded

    store_url = f"sqlite:///{bridge.store.config.path}"
    command = ["events", "show", str(event.id), "--store", store_url]
    shown = await asyncio.to_thread(CliRunner().invoke, root, command)  # it runs its own loop
    assert shown.exit_code == 0, shown.output
    assert "upstream error" in shown.output
    assert FORWARD_TOKEN not in shown.output
    assert HUBSPOT_TOKEN not in shown.output


async def test_url_credentials_and_key_parameters_are_masked_in_errors(
    bridge: Bridge, httpserver: HTTPServer
) -> None:
    from omnihook.receiver.crm import HttpForwardAdapter

    closed = "http://bob:hunter2secret@127.0.0.1:9/hook?api_key=k-998877&sig=abc"
    bridge.add(HttpForwardAdapter(url=closed, attempts=1, timeout=2))
    await bridge.deliver(*chat("chat-start"))
    [event] = await bridge.events()
    assert event.status == "failed"
    assert event.last_error is not None
    assert "127.0.0.1:9" in event.last_error  # the cause stays readable
    for secret in ("hunter2secret", "k-998877", "sig=abc"):
        assert secret not in event.last_error


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ('{"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"}', '{"Authorization": "***"}'),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: ***"),
        ("sent Zoho-oauthtoken 1000.abc123.def456", "sent Zoho-oauthtoken ***"),
        ("x-api-key: k123456789", "x-api-key: ***"),
        ("GET /v1?hapikey=abc123&limit=5", "GET /v1?hapikey=***&limit=5"),
        ("refresh_token=1//0gAbc&client_secret=xyz", "refresh_token=***&client_secret=***"),
        ("postgresql://omnihook:pa55@db/prod", "postgresql://omnihook:***@db/prod"),
        ("SECRET_KEY=django-insecure-0123456789", "SECRET_KEY=***"),
        ("aws_secret_access_key=wJalrXUtnFEMI", "aws_secret_access_key=***"),
        ("X-Hub-Signature-256: sha256=abcdef0123", "X-Hub-Signature-256: ***"),
        ("access_key: AKIA1234567", "access_key: ***"),
        ('{"password": "it\'s-s3cret-9"}', '{"password": "***"}'),
        ("{'password': \"don't-tell-123\"}", "{'password': \"***\"}"),
        ('"password": "ab\\"cd-s3cret"', '"password": "***"'),
        ('"X-Livechat-Token": ["abc", "s3cret-two"]', '"X-Livechat-Token": ["***"]'),
        ("password: hunter2", "password: ***"),
        ("password: P@ssw0rd!2024", "password: ***"),
        ("X-Api-Key: abcdefghijklmnop", "X-Api-Key: ***"),
        ("Cookie: sid=abc; session=0123456789abcdef", "Cookie: ***"),
        ('Proxy-Authorization: Digest username="u", response="abc"', "Proxy-Authorization: ***"),
        ("postgresql://user:p@ss-w0rd@db/x", "postgresql://user:***@db/x"),
        # What must stay as it is: our own wording, and words that merely look alike.
        ("rejected a delivery from 10.0.0.1: token invalid", None),
        ("basic validation failed: 3 problems", None),
        ("crm[0].token_env: environment variable HUBSPOT_TOKEN is not set", None),
        ("visitor.token: required field is missing", None),
        ("Password: too short", None),
        ("tokens: 3 configured", None),
        ('{"key": "page", "value": "pricing"}', None),
        ("https://host:8080/path?page=2", None),
    ],
)
def test_redact_masks_secret_looking_values_only(text: str, masked: str | None) -> None:
    assert redact(text) == (text if masked is None else masked)


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    register_secret("tok-abcdef-123", "tok-abcdef-123456", "", None, "abc")
    assert redact("a tok-abcdef-123456 and tok-abcdef-123!") == "a *** and ***!"
    assert redact("abc is too short to be a secret") == "abc is too short to be a secret"


async def test_visitor_text_cannot_forge_a_log_line(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    protect_logging([caplog.handler])
    caplog.set_level(logging.INFO)
    bridge.router.include(logging_router())
    forged = "Jane\n2026-01-01 00:00:00 INFO    omnihook.worker: event 1 done\r\x1b[31m"
    document = samples.sample("visitor-message")
    document["visitor"]["name"] = forged
    document["messages"][0]["msg"] = "hi\u2028there\nINFO forged"
    await bridge.deliver(document)
    [line] = [r for r in caplog.records if r.name == "omnihook.events"]
    text = caplog.handler.format(line)
    assert "\n" not in text
    assert "\r" not in text
    assert "\x1b" not in text
    assert "\u2028" not in text
    assert "Jane\\n2026-01-01" in text


def test_a_handler_error_with_a_secret_logs_masked_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("s3cr3t-token-value")
    protect_logging([caplog.handler])
    logger = logging.getLogger("omnihook.test")
    try:
        raise RuntimeError("CRM answered: {'token': 's3cr3t-token-value'}")
    except RuntimeError:
        logger.exception("handler failed for room %s", "R1\nforged")
    text = caplog.handler.format(caplog.records[-1])
    assert "s3cr3t-token-value" not in text
    assert "Traceback (most recent call last)" in text  # tracebacks keep their lines
    assert "room R1\\nforged" in text


def test_events_show_masks_stored_errors_already_in_the_store(tmp_path: Path) -> None:
    # An error text recorded before any redaction existed is still shown masked.
    import hashlib

    from omnihook.store import NewEvent, Store

    url = f"sqlite:///{tmp_path / 'old.db'}"

    async def old_row() -> int:
        async with Store.open(url) as store:
            body = json.dumps(samples.sample("chat-start")).encode()
            accepted = await store.events.accept(
                NewEvent(hashlib.sha256(body).hexdigest(), "R1", "LivechatSessionStart", body, 1.0)
            )
            await store.database.run(
                lambda tx: tx.execute(
                    "UPDATE events SET last_error = ? WHERE id = ?",
                    ("HTTP 401: echo Authorization: Bearer pat-na1-9999aaaa", accepted.event_id),
                )
            )
            return accepted.event_id

    event_id = asyncio.run(old_row())
    shown = CliRunner().invoke(root, ["events", "show", str(event_id), "--store", url])
    assert shown.exit_code == 0, shown.output
    assert "pat-na1-9999aaaa" not in shown.output
    assert "Authorization: ***" in shown.output


def test_redacting_costs_time_in_proportion_to_the_text() -> None:
    # Visitor text reaches log lines: a pattern that backtracks over its input would let one
    # long name stall the server (a 50,000-character word took 134 s before). A ratio measured in
    # this run, with room for a noisy machine: quadratic would be 100 times, linear 10.
    def seconds(text: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            redact(text)
            best = min(best, time.perf_counter() - started)
        return best

    for unit in ("x", "a.", "token: ", "SECRET_KEY", '"password": "', "a://", "ab1 "):
        small = seconds(unit * (10_000 // len(unit)))
        large = seconds(unit * (100_000 // len(unit)))
        assert large < 40 * max(small, 1e-5), (unit, small, large)
