"""``omnihook serve``: where tokens come from, and the real server answering as the table says."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.receiver.cli import resolve_tokens, serve

from ..conftest import free_port

OMNIHOOK = str(Path(sys.executable).with_name("omnihook"))


@contextmanager
def running_serve(
    *args: str, cwd: Path, token: str | None = None
) -> Iterator[tuple[str, list[str]]]:
    """Run ``omnihook serve`` as users do; yields its base URL and, after exit, its output."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIHOOK_")}
    if token is not None:
        env["OMNIHOOK_TOKEN"] = token
    process = subprocess.Popen(
        [OMNIHOOK, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"serve exited early: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not come up within 20 s")
            time.sleep(0.1)
        yield base, output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        output.append(out)


def test_serve_answers_like_the_table(tmp_path: Path) -> None:
    token = "serve-test-token-1"
    with running_serve(cwd=tmp_path, token=f"{token},older-token") as (base, output):
        url = f"{base}/rocketchat"
        headers = {TOKEN_HEADER: token}
        send_test = httpx.post(url, json=samples.send_test_sample(), headers=headers)
        close = httpx.post(url, json=samples.sample("chat-close"), headers=headers)
        rotated = httpx.post(
            url, json=samples.sample("chat-start"), headers={TOKEN_HEADER: "older-token"}
        )
        no_token = httpx.post(url, json=samples.sample("chat-close"))
        wrong = httpx.post(url, json=samples.sample("chat-close"), headers={TOKEN_HEADER: "guess"})
        not_json = httpx.post(url, content=b"<xml/>", headers=headers)
        broken = samples.sample("chat-close")
        broken["createdAt"] = "tuesday"
        contract = httpx.post(url, json=broken, headers=headers)
        unknown = httpx.post(url, json={"type": "Future", "_id": "R1"}, headers=headers)
        too_big = httpx.post(url, content=b" " * (16 * 1024 * 1024 + 1), headers=headers)
    assert (send_test.status_code, send_test.json()) == (200, {"ok": True})
    assert close.status_code == 200
    assert rotated.status_code == 200
    assert (no_token.status_code, no_token.json()["error"]) == (401, "missing_token")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_json")
    assert (contract.status_code, contract.json()["problems"][0]["path"]) == (422, "createdAt")
    assert unknown.status_code == 200
    assert too_big.status_code == 413
    log = output[0]
    assert "Send Test sample received" in log
    assert 'Chat Close room=hX4Lq2rNwPZ8Kc7Ry visitor="Jane Doe" <jane.doe@example.com>' in log
    assert "Future (unknown type) room=R1" in log
    assert "accepting 2 token(s) from OMNIHOOK_TOKEN" in log
    assert token not in log
    assert "older-token" not in log


def test_serve_without_token_generates_one_once(tmp_path: Path) -> None:
    with running_serve(cwd=tmp_path) as (base, output):
        saved = (tmp_path / "omnihook.token").read_text().strip()
        ok = httpx.post(
            f"{base}/rocketchat", json=samples.sample("chat-start"), headers={TOKEN_HEADER: saved}
        )
    assert ok.status_code == 200
    assert f"    {saved}\n" in output[0]
    assert "Administration > Omnichannel > Webhooks > Secret Token" in output[0]
    assert stat.S_IMODE((tmp_path / "omnihook.token").stat().st_mode) == 0o600
    with running_serve(cwd=tmp_path) as (base, output):
        again = httpx.post(
            f"{base}/rocketchat", json=samples.sample("chat-start"), headers={TOKEN_HEADER: saved}
        )
    assert again.status_code == 200
    assert saved not in output[0]
    assert "from token file omnihook.token" in output[0]


def test_serve_runs_a_users_router_durably_then_inline(tmp_path: Path) -> None:
    (tmp_path / "myhooks.py").write_text(
        "from omnihook.contracts import EventType\n"
        "from omnihook.receiver import Router\n"
        "router = Router()\n"
        "@router.on(EventType.CHAT_CLOSE)\n"
        "async def closed(event):\n"
        "    return {'ticket': 'T-' + event.room_id}\n"
    )
    headers = {TOKEN_HEADER: "t0k"}
    with running_serve("--app", "myhooks:router", "--path", "/hook", cwd=tmp_path, token="t0k") as (
        base,
        _,
    ):
        close = httpx.post(f"{base}/hook", json=samples.sample("chat-close"), headers=headers)
        assert close.json() == {"ok": True, "contactId": "crm-7731"}  # answered before handling
        wait_until_handled(tmp_path / "omnihook.db", count=1)
        edit = httpx.post(f"{base}/hook", json=samples.sample("chat-edit"), headers=headers)
    # The ticket the close handler stored comes back with the room's next answer.
    assert edit.json() == {"ok": True, "contactId": "crm-7731", "ticket": "T-hX4Lq2rNwPZ8Kc7Ry"}
    with running_serve("--app", "myhooks:router", "--no-store", cwd=tmp_path, token="t0k") as (
        base,
        _,
    ):
        inline = httpx.post(
            f"{base}/rocketchat", json=samples.sample("chat-close"), headers=headers
        )
    assert inline.json()["ticket"] == "T-hX4Lq2rNwPZ8Kc7Ry"


def wait_until_handled(database: Path, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            (done,) = connection.execute(
                "SELECT COUNT(*) FROM events WHERE status = 'done'"
            ).fetchone()
        if done >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} event(s) not handled within 15 s")


def test_serve_runs_a_users_asgi_app_as_is(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        "from omnihook.receiver import Router, create_app\n"
        "app = create_app(Router(), tokens=['own-token'], path='/own')\n"
    )
    with running_serve("--app", "myapp:app", cwd=tmp_path) as (base, output):
        response = httpx.post(
            f"{base}/own", json=samples.sample("chat-start"), headers={TOKEN_HEADER: "own-token"}
        )
    assert response.status_code == 200
    assert not (tmp_path / "omnihook.token").exists()
    assert "serving myapp:app as is" in output[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "expected module:attribute"),
        ("no_such_module_xyz:app", "cannot import 'no_such_module_xyz'"),
        ("json:no_such_attr", "'json' has no attribute 'no_such_attr'"),
        ("json:__doc__", "expected a Router or an ASGI app"),
    ],
)
def test_bad_app_specs_are_usage_errors(spec: str, message: str) -> None:
    result = CliRunner().invoke(serve, ["--app", spec])
    assert result.exit_code == 2
    assert message in result.stderr


def test_tokens_come_from_file_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("# rotated 2025-03\nnew-token\n\nold-token\n")
    monkeypatch.setenv("OMNIHOOK_TOKEN", "env-a, env-b")
    default = tmp_path / "default.token"
    assert resolve_tokens(token_file, False, default).tokens == ["new-token", "old-token"]
    assert resolve_tokens(None, False, default).tokens == ["env-a", "env-b"]
    monkeypatch.delenv("OMNIHOOK_TOKEN")
    assert resolve_tokens(None, True, default).tokens == []
    assert not default.exists()
    generated = resolve_tokens(None, False, default).tokens
    assert len(generated) == 1
    assert len(generated[0]) >= 40
    assert resolve_tokens(None, False, default).tokens == generated


def test_unusable_token_files_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n")
    with pytest.raises(click.ClickException, match="holds no token"):
        resolve_tokens(empty, False, tmp_path / "d")
    with pytest.raises(click.ClickException, match="cannot read token file"):
        resolve_tokens(tmp_path / "missing.txt", False, tmp_path / "d")


def test_serve_help_lists_its_options() -> None:
    result = CliRunner().invoke(serve, ["--help"])
    for option in ("--app", "--host", "--port", "--path", "--token-file", "--insecure-no-token"):
        assert option in result.output
    assert "--token " not in result.output  # tokens never come from argv


def test_generated_token_file_does_not_clobber(tmp_path: Path) -> None:
    default = tmp_path / "omnihook.token"
    default.write_text("kept\n")
    assert resolve_tokens(None, False, default).tokens == ["kept"]


def test_serve_logs_one_line_per_event_and_no_secret_whatever_the_payload(tmp_path: Path) -> None:
    token = "serve-log-token-123456"
    with running_serve(cwd=tmp_path, token=token) as (base, output):
        document = samples.sample("visitor-message")
        document["visitor"]["name"] = (
            "Mallory\n2026-01-01 00:00:00,000 INFO    omnihook.events: forged"
        )
        document["messages"][0]["msg"] = (
            f"my token is {token}\r\nand Authorization: Bearer abc123xyz9"
        )
        answer = httpx.post(f"{base}/rocketchat", json=document, headers={TOKEN_HEADER: token})
        assert answer.status_code == 200
        deadline = time.monotonic() + 10  # until the worker has handled (and logged) it
        while time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / "omnihook.db") as db:
                if db.execute("SELECT status FROM events").fetchall() == [("done",)]:
                    break
            time.sleep(0.05)
    log = output[0]
    [line] = [line for line in log.splitlines() if "Mallory" in line]
    assert "Mallory\\n2026-01-01" in line  # the forged line stays inside the real one
    assert "forged" not in log.replace(line, "")
    assert token not in log
    assert "abc123xyz9" not in log
