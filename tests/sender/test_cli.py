"""``omnihook send`` and ``omnihook send-test`` against pytest-httpserver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.contracts.cli import root
from omnihook.sender import Attempt
from omnihook.sender.cli import _print_attempt


def run(*args: str, token: str | None = "cli-token", stdin: bytes | None = None) -> Result:
    env = {"OMNIHOOK_TOKEN": token} if token is not None else {"OMNIHOOK_TOKEN": ""}
    return CliRunner().invoke(root, list(args), env=env, input=stdin)


def test_send_a_sample_prints_the_attempt(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data('{"contactId":"c-1"}')
    result = run("send", httpserver.url_for("/hook"), "--sample", "chat-close")
    assert result.exit_code == 0, result.output
    assert "attempt 1: HTTP 200 in" in result.stdout
    assert 'answered {"contactId":"c-1"}' in result.stdout
    assert result.stdout.strip().endswith("delivered")
    [(request, _)] = httpserver.log
    assert request.headers[TOKEN_HEADER] == "cli-token"
    assert json.loads(request.get_data()) == samples.sample("chat-close")


def test_send_a_file_byte_for_byte_and_fail_on_a_final_status(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/hook").respond_with_data('{"error":"nope"}', status=422)
    payload = tmp_path / "p.json"
    payload.write_bytes(b'{ "type" : "LivechatSessionStart" }')
    result = run("send", httpserver.url_for("/hook"), "--file", str(payload))
    assert result.exit_code == 1
    assert "warning: the payload breaks the contract, sending it anyway" in result.stderr
    assert 'attempt 1: HTTP 422: {"error":"nope"}' in result.stdout
    assert "failed: HTTP 422" in result.stderr
    [(request, _)] = httpserver.log
    assert request.get_data() == payload.read_bytes()


def test_send_from_stdin_without_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=503)
    document = json.dumps(samples.sample("chat-start")).encode()
    result = run(
        "send", httpserver.url_for("/hook"), "--file", "-", "--policy", "no-retry", stdin=document
    )
    assert result.exit_code == 1
    assert "attempt 1: HTTP 503" in result.stdout
    assert "retrying" not in result.stdout
    assert len(httpserver.log) == 1
    assert httpserver.log[0][0].get_data() == document


def test_attempt_lines_announce_the_next_wait(capsys: pytest.CaptureFixture[str]) -> None:
    _print_attempt(Attempt(1, 500, "HTTP 500: down", "down", 0.0123, 20.0))
    _print_attempt(Attempt(2, 200, None, "", 0.004, None))
    assert capsys.readouterr().out == (
        "attempt 1: HTTP 500: down (12 ms)\n"
        "  retrying in 20 s (Ctrl-C to stop)\n"
        "attempt 2: HTTP 200 in 4 ms\n"
    )


def test_send_without_a_token_says_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    result = run("send", httpserver.url_for("/hook"), "--sample", "offline-message", token=None)
    assert result.exit_code == 0
    assert "no token" in result.stderr
    [(request, _)] = httpserver.log
    assert TOKEN_HEADER not in request.headers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of --file or --sample"),
        (("--sample", "chat-close", "--file", "x.json"), "give exactly one of --file or --sample"),
        (("--sample", "chat-paused"), "'chat-paused' is not one of"),
    ],
)
def test_send_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run("send", "http://127.0.0.1:9/hook", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_send_test_prints_it_works(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    result = run("send-test", httpserver.url_for("/hook"))
    assert result.exit_code == 0
    assert result.stdout == "It works\n"
    [(request, _)] = httpserver.log
    assert request.headers[TOKEN_HEADER] == "cli-token"
    assert json.loads(request.get_data())["_id"] == "fasd6f5a4sd6f8a4sdf"


def test_send_test_failure_shows_status_and_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data('{"error":"invalid_token"}', status=401)
    result = run("send-test", httpserver.url_for("/hook"))
    assert result.exit_code == 1
    assert result.stderr == 'error-invalid-webhook-response: HTTP 401: {"error":"invalid_token"}\n'
    assert len(httpserver.log) == 1
