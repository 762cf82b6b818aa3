"""``omnihook validate`` reads what ``omnihook inspect --capture`` writes: the body of each record."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from omnihook.contracts import TOKEN_HEADER, samples
from omnihook.contracts.cli import root
from omnihook.receiver.inspector import create_inspector


async def _capture(bodies: list[bytes], capture: Path, token: str = "t") -> None:
    app = create_inspector(["t"], capture=capture, echo=lambda line: None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as client:
        for body in bodies:
            await client.post(
                "/rocketchat",
                content=body,
                headers={TOKEN_HEADER: token, "Content-Type": "application/json"},
            )


def _validate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(root, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


async def test_validate_checks_the_body_of_each_captured_delivery(tmp_path: Path) -> None:
    broken = samples.sample("chat-start")
    del broken["visitor"]["username"]
    bodies = [
        json.dumps(samples.sample("chat-close"), indent=1).encode(),
        json.dumps(broken).encode(),
        b"{nope",
        b"\xff\xfe not utf-8",  # captured as body_base64
        json.dumps(samples.sample("visitor-message")).encode(),
    ]
    capture = tmp_path / "capture.jsonl"
    await _capture(bodies, capture)
    assert len(capture.read_text().splitlines()) == len(bodies)
    assert "body_base64" in capture.read_text().splitlines()[3]

    code, out, err = _validate(str(capture))
    assert code == 1
    assert f"{capture}:1: ok (LivechatSession, room hX4Lq2rNwPZ8Kc7Ry)" in out
    assert f"{capture}:2: invalid LivechatSessionStart" in out
    assert "  visitor.username: required field is missing" in out
    assert f"{capture}:3: not JSON" in out
    assert f"{capture}:4: not JSON" in out
    assert f"{capture}:5: ok (Message, room hX4Lq2rNwPZ8Kc7Ry)" in out
    assert "5 payload(s) checked, 3 invalid" in err


async def test_a_capture_of_valid_deliveries_passes_whatever_its_name(tmp_path: Path) -> None:
    capture = tmp_path / "rocketchat.log"  # `--capture` takes any file name
    bodies = [json.dumps(samples.sample(name)).encode() for name in ("chat-start", "chat-taken")]
    await _capture(bodies, capture)
    await _capture(bodies[:1], capture, token="wrong")  # refused with 401, captured all the same
    code, out, err = _validate(str(capture))
    assert code == 0, out
    assert out.splitlines() == [
        f"{capture}:1: ok (LivechatSessionStart, room hX4Lq2rNwPZ8Kc7Ry)",
        f"{capture}:2: ok (LivechatSessionTaken, room hX4Lq2rNwPZ8Kc7Ry)",
        f"{capture}:3: ok (LivechatSessionStart, room hX4Lq2rNwPZ8Kc7Ry)",
    ]
    assert "3 payload(s) checked, 0 invalid" in err
    single = tmp_path / "one.json"  # one record alone, as a JSON document
    single.write_text(capture.read_text().splitlines()[1])
    code, out, _ = _validate(str(single))
    assert code == 0
    assert out == f"{single}: ok (LivechatSessionTaken, room hX4Lq2rNwPZ8Kc7Ry)\n"
