"""The live inspector flags drift and passes real payloads; replay re-sends a capture exactly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.contracts.cli import root
from omnihook.receiver.inspector import create_inspector
from omnihook.sender.testing import WebhookSink


async def inspect(
    bodies: list[bytes], tmp_path: Path, token: str = "t"
) -> tuple[list[str], list[int], Path]:
    lines: list[str] = []
    capture = tmp_path / "capture.jsonl"
    app = create_inspector(["t"], capture=capture, echo=lines.append)
    statuses = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as client:
        for body in bodies:
            response = await client.post(
                "/rocketchat",
                content=body,
                headers={TOKEN_HEADER: token, "Content-Type": "application/json"},
            )
            statuses.append(response.status_code)
    return lines, statuses, capture


async def test_real_payloads_pass(tmp_path: Path) -> None:
    bodies = [json.dumps(samples.sample(name)).encode() for name in samples.SAMPLE_NAMES]
    lines, statuses, _ = await inspect(bodies, tmp_path)
    assert set(statuses) == {200}
    assert len(lines) == len(bodies)  # one line each, nothing to report
    assert all(line[9] == "✓" for line in lines), lines
    assert lines[-1].endswith("✓ Send Test sample: Rocket.Chat reaches this URL")
    assert 'Chat Close room=hX4Lq2rNwPZ8Kc7Ry visitor="Jane Doe" <jane.doe@example.com>' in lines[6]


async def test_drift_is_flagged_with_what_and_where(tmp_path: Path) -> None:
    drifted = samples.sample("chat-close")
    drifted["messages"][0]["ts"] = "2025-03-14T09:30:04Z"  # parses, but not Rocket.Chat's form
    drifted["visitor"]["loyaltyTier"] = "gold"  # a field this version does not know
    broken = samples.sample("chat-start")
    del broken["visitor"]["username"]
    unknown = {"type": "LivechatSessionPaused", "_id": "R9"}
    bodies = [json.dumps(d).encode() for d in (drifted, broken, unknown)] + [b"{nope"]
    lines, statuses, _ = await inspect(bodies, tmp_path)
    assert statuses == [200, 422, 200, 400]
    assert lines[0].endswith("— drifts from the contract")
    assert (
        lines[1]
        == "    messages[0].ts: not a Rocket.Chat date: expected the form 2025-01-01T10:00:00.000Z, got '2025-03-14T09:30:04Z'"
    )
    assert lines[2] == "    note: unknown field visitor.loyaltyTier"
    assert lines[3].endswith("✗ 422 LivechatSessionStart: breaks the contract")
    assert lines[4] == "    visitor.username: required field is missing"
    assert lines[5].endswith(
        "! LivechatSessionPaused room=R9: unknown event type (a newer Rocket.Chat?)"
    )
    assert lines[6].endswith("✗ 400 payload: not JSON")


async def test_wrong_token_is_refused_and_never_captured(tmp_path: Path) -> None:
    lines, statuses, capture = await inspect(
        [json.dumps(samples.sample("chat-start")).encode()], tmp_path, token="guess"
    )
    assert statuses == [401]
    assert "✗ 401 token invalid" in lines[0]
    record = json.loads(capture.read_text())
    assert record["headers"][TOKEN_HEADER.lower()] == "<redacted>"
    assert "guess" not in capture.read_text()


def test_replay_resends_a_capture_byte_for_byte(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    bodies = [
        json.dumps(samples.sample(name), indent=1).encode() for name in ("chat-start", "chat-close")
    ]
    bodies.append('{"type": "Message", "odd": "\u00e9"}'.encode())
    _, _, capture = asyncio.run(inspect(bodies, tmp_path))
    result = CliRunner().invoke(
        root, ["replay", str(capture), webhook_sink.url, "--fast"], env={"OMNIHOOK_TOKEN": "again"}
    )
    assert result.exit_code == 0, result.output
    assert [d.body for d in webhook_sink.deliveries] == bodies
    assert all(d.headers[TOKEN_HEADER.lower()] == "again" for d in webhook_sink.deliveries)
    assert "3 delivery(ies) replayed, 0 not answered 200" in result.stderr


def test_replay_refuses_a_file_that_is_not_a_capture(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"hello": 1}\n')
    result = CliRunner().invoke(root, ["replay", str(bogus), "http://127.0.0.1:9/x"])
    assert result.exit_code == 1
    assert "bogus.jsonl:1: not a capture record" in result.stderr
