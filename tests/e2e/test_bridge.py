"""A simulated chat through a real `omnihook serve --config` with two adapters at once (the
HubSpot fake and the SQL CRM): both end with the same person and the same transcript."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from omnihook.contracts import parse_event, samples
from omnihook.contracts.cli import root
from omnihook.receiver.crm.testing import FakeHubSpot
from omnihook.sender import RetryPolicy, Sender

from ..conftest import free_port
from ..processes import OMNIHOOK, OmnihookProcess, query_one, wait_for

CHAT = [
    "chat-start",
    "chat-queued",
    "chat-taken",
    "visitor-message",
    "agent-message",
    "chat-forwarded",
    "chat-close",
]
ROOM = "hX4Lq2rNwPZ8Kc7Ry"


async def play(url: str) -> None:
    async with Sender(url, token="bridge-token", policy=RetryPolicy.no_retry()) as sender:
        for name in CHAT:
            document = samples.sample(name)
            document.pop("crmData", None)
            delivery = await sender.send(document)
            assert delivery.ok, delivery


def test_hubspot_and_sql_crm_end_with_the_same_person_and_transcript(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    hubspot = FakeHubSpot(httpserver)
    port = free_port()
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    (tmp_path / "bridge.toml").write_text(
        f"""
[receiver]
port = {port}
store = "{store_url}"
token_env = "BRIDGE_TOKEN"
chat_url = "https://chat.example.com/omnichannel/current/{{room_id}}"

[[crm]]
kind = "hubspot"
token_env = "HUBSPOT_TOKEN"
base_url = "{hubspot.base_url}"
field_map = {{ plan = "plan" }}

[[crm]]
kind = "sql"
"""
    )
    env = {"BRIDGE_TOKEN": "bridge-token", "HUBSPOT_TOKEN": hubspot.token}
    server = OmnihookProcess(["serve", "--config", "bridge.toml"], tmp_path, env, port).start()
    try:
        asyncio.run(play(f"http://127.0.0.1:{port}/rocketchat"))
        wait_for(lambda: query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}events WHERE status = 'done'")
                 == (len(CHAT),), 30, "the chat to be handled")  # fmt: skip
    finally:
        server.stop()
    assert "CRM adapter hubspot (HubSpotAdapter)" in server.output()

    # HubSpot: one contact, one note with the transcript.
    [(email, contact)] = hubspot.contacts.items()
    [note] = hubspot.notes.values()
    body = note["properties"]["hs_note_body"]
    # SQL CRM: the same person and the same messages.
    runner = CliRunner()
    listed = runner.invoke(root, ["contacts", "list", "--json", "--store", store_url])
    [sql_contact] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (sql_contact["email"], sql_contact["name"]) == (email, "Jane Doe")
    assert (contact["properties"]["firstname"], contact["properties"]["lastname"]) == (
        "Jane",
        "Doe",
    )
    assert contact["properties"]["plan"] == sql_contact["custom_fields"]["plan"] == "pro"
    shown = runner.invoke(
        root, ["conversations", "show", ROOM, "--store", store_url], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    close = parse_event(samples.sample("chat-close"))
    for message in close.messages:
        assert message.text in body
        assert message.text in shown.stdout
    assert "closed, closed by user" in shown.stdout
    assert "[file: receipt.pdf]" in shown.stdout


def test_a_bad_bridge_file_stops_serve_and_worker_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "bridge.toml").write_text('[[crm]]\nkind = "hubspot"\ntoken = "pat-secret"\n')
    for command in ("serve", "worker"):
        result = subprocess.run([OMNIHOOK, command, "--config", "bridge.toml"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)  # fmt: skip
        assert result.returncode == 1
        assert "crm[0].token: secrets do not go in the file" in result.stderr
        assert "pat-secret" not in result.stderr
    (tmp_path / "env.toml").write_text(
        '[[crm]]\nkind = "hubspot"\ntoken_env = "NOT_SET_ANYWHERE"\n'
    )
    result = subprocess.run([OMNIHOOK, "serve", "--config", "env.toml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "OMNIHOOK_TOKEN": "t"})  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "crm[0].token_env: environment variable NOT_SET_ANYWHERE is not set" in result.stderr
