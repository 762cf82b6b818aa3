"""The client commands (``send``, ``send-test``, ``simulate``, ``replay``, ``trigger``) against
pytest-httpserver: what they send, where the token comes from, what a bad URL gets."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.contracts.cli import root
from omnihook.contracts.tokens import DEFAULT_TOKEN_FILE
from omnihook.sender import Attempt
from omnihook.sender.cli import _print_attempt


@pytest.fixture(autouse=True)
def _in_a_fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs where no ./omnihook.token lies around (unless the test writes one)."""
    monkeypatch.chdir(tmp_path)


def run(
    *args: str,
    token: str | None = "cli-token",
    stdin: bytes | None = None,
    token_file: str | None = None,
) -> Result:
    env = {"OMNIHOOK_TOKEN": token or "", "OMNIHOOK_TOKEN_FILE": token_file}
    return CliRunner().invoke(root, list(args), env=env, input=stdin)


def write_capture(path: Path, count: int = 1) -> Path:
    records = [
        json.dumps({"received_at": f"2025-03-14T10:00:0{n}+00:00",
                    "body": json.dumps(samples.sample("visitor-message"))})
        for n in range(count)
    ]  # fmt: skip
    path.write_text("\n".join(records) + "\n")
    return path


def command_line(command: str, url: str) -> list[str]:
    """The shortest valid use of each client command that takes a URL."""
    return {
        "send": ["send", url, "--sample", "chat-start", "--policy", "no-retry"],
        "send-test": ["send-test", url],
        "simulate": ["simulate", url, "--chats", "1", "--policy", "no-retry"],
        "replay": ["replay", str(write_capture(Path("capture.jsonl"))), url, "--fast"],
        "trigger": ["trigger", url, "--visitor-token", "v-1"],
    }[command]


CLIENT_COMMANDS = ["send", "send-test", "simulate", "replay", "trigger"]


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


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_client_commands_fall_back_to_the_token_file_serve_wrote(
    command: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_json({"contents": [{"msg": "hi", "order": 0}]})
    descriptor = os.open(DEFAULT_TOKEN_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(descriptor, b"# written by omnihook serve\nfrom-the-file\n")
    os.close(descriptor)
    result = run(*command_line(command, httpserver.url_for("/hook")), token=None)
    assert result.exit_code == 0, result.output
    assert "token: from ./omnihook.token" in result.stderr
    assert "no token" not in result.stderr
    assert "warning" not in result.stderr
    assert httpserver.log
    assert {request.headers[TOKEN_HEADER] for request, _ in httpserver.log} == {"from-the-file"}


@pytest.mark.parametrize("command", ["send-test", "trigger"])
def test_the_environment_and_token_file_option_win_over_the_default_file(
    command: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_json({"contents": [{"msg": "hi", "order": 0}]})
    DEFAULT_TOKEN_FILE.write_text("from-the-default-file\n")
    Path("mine.token").write_text("from-my-file\n")
    url = httpserver.url_for("/hook")
    from_env = run(*command_line(command, url), token="from-env")
    from_option = run(*command_line(command, url), token="from-env", token_file="mine.token")
    assert (from_env.exit_code, from_option.exit_code) == (0, 0)
    assert "omnihook.token" not in from_env.stderr + from_option.stderr
    assert [request.headers[TOKEN_HEADER] for request, _ in httpserver.log] == [
        "from-env",
        "from-my-file",
    ]


def test_no_token_anywhere_says_where_one_would_come_from(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=401)
    result = run("send-test", httpserver.url_for("/hook"), token=None)
    assert result.exit_code == 1
    assert (
        "note: no token ($OMNIHOOK_TOKEN, --token-file or ./omnihook.token): sending without one"
        in result.stderr
    )
    [(request, _)] = httpserver.log
    assert request.headers[TOKEN_HEADER] == ""  # Send Test always sends the header, as Rocket.Chat


def test_an_unusable_default_token_file_is_an_error_not_a_tokenless_request(
    httpserver: HTTPServer,
) -> None:
    DEFAULT_TOKEN_FILE.write_text("# nothing here\n")
    result = run("send-test", httpserver.url_for("/hook"), token=None)
    assert result.exit_code == 1
    assert result.stderr == "Error: token file omnihook.token holds no token\n"
    assert not httpserver.log


def test_a_token_file_others_can_read_is_used_with_a_warning(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    DEFAULT_TOKEN_FILE.write_text("loose\n")
    DEFAULT_TOKEN_FILE.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        result = run("send-test", httpserver.url_for("/hook"), token=None)
    assert result.exit_code == 0, result.output
    assert [record.getMessage() for record in caplog.records] == [
        "warning: group/others can access token file omnihook.token (mode 644): "
        "run chmod 600 omnihook.token"
    ]
    DEFAULT_TOKEN_FILE.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert run("send-test", httpserver.url_for("/hook"), token=None).exit_code == 0
    assert not caplog.records


BAD_URLS = [
    ("127.0.0.1:8000/rocketchat", "has no scheme: add http:// (http://127.0.0.1:8000/rocketchat)"),
    ("localhost:8000/rocketchat", "has no scheme: add http:// (http://localhost:8000/rocketchat)"),
    ("/rocketchat", "has no scheme and host: e.g. http://127.0.0.1:8000/rocketchat"),
    ("http:///rocketchat", "has no host"),
    ("http://:8000/rocketchat", "has no host"),
    ("http:/127.0.0.1:8000/rocketchat", "is malformed: write http://HOST:PORT/PATH"),
    ("ftp://127.0.0.1/rocketchat", "unsupported scheme ftp://, use http:// or https://"),
    ("ws://127.0.0.1:8000/rocketchat", "unsupported scheme ws://"),
    ("http://127.0.0.1:80000/rocketchat", "has an invalid port"),
    ("http://127.0.0.1:port/rocketchat", "has an invalid port"),
    ("http://127.0.0.1 :8000/rocketchat", "holds spaces or control characters"),
    ("", "empty"),
]


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[url or "empty" for url, _ in BAD_URLS])
def test_a_malformed_url_is_a_one_line_usage_error(command: str, url: str, message: str) -> None:
    result = run(*command_line(command, url))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: Invalid value for 'URL': ")
    assert message in error
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_an_upper_case_scheme_is_accepted(command: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_json({"contents": [{"msg": "hi", "order": 0}]})
    url = httpserver.url_for("/hook").replace("http://", "HTTP://")
    result = run(*command_line(command, url))
    assert result.exit_code == 0, result.output
    assert httpserver.log


def test_replay_exits_1_when_a_delivery_is_not_answered_200(httpserver: HTTPServer) -> None:
    answers = iter([("", 200), ('{"error":"invalid_token"}', 401), ("", 204)])

    def answer(request: Request) -> Response:
        body, status = next(answers)
        return Response(body, status=status)

    httpserver.expect_request("/hook").respond_with_handler(answer)
    capture = write_capture(Path("capture.jsonl"), count=3)
    result = run("replay", str(capture), httpserver.url_for("/hook"), "--fast")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith("Message: 200")
    assert lines[1].endswith('Message: HTTP 401: {"error":"invalid_token"}')
    assert lines[2].endswith("Message: HTTP 204")
    assert "3 delivery(ies) replayed, 2 not answered 200" in result.stderr
    assert len(httpserver.log) == 3


def test_replay_exits_1_when_nothing_answers(tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture.jsonl")
    result = run("replay", str(capture), "http://127.0.0.1:9/hook", "--fast")
    assert result.exit_code == 1
    assert "1 delivery(ies) replayed, 1 not answered 200" in result.stderr


def test_replay_of_an_empty_capture_says_so(tmp_path: Path) -> None:
    capture = tmp_path / "empty.jsonl"
    capture.write_text("\n")
    result = run("replay", str(capture), "http://127.0.0.1:9/hook")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {capture} holds no delivery: nothing to replay\n"
