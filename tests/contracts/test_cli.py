"""The root command: schema, validate, and the subcommands the other parts register."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnihook.contracts import json_schema, samples
from omnihook.contracts.cli import root


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(root, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_the_installed_command_lists_every_part() -> None:
    script = Path(sys.executable).with_name("omnihook")
    output = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("schema", "validate", "send", "send-test", "serve"):
        assert f"  {command} " in output


def test_version_names_every_part_and_python() -> None:
    code, out, _ = run("--version")
    assert code == 0
    parts = ["omnihook-contracts", "omnihook-store", "omnihook-sender", "omnihook-receiver"]
    lines = out.splitlines()
    assert lines[0] == f"omnihook {importlib.metadata.version('omnihook-contracts')}"
    assert lines[1:5] == [f"  {part:<18}  {importlib.metadata.version(part)}" for part in parts]
    assert lines[5].split() == [
        "Python",
        platform.python_version(),
        f"({platform.python_implementation()},",
        f"{sys.executable})",
    ]


def test_version_says_which_part_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version

    def without_sender(distribution: str) -> str:
        if distribution == "omnihook-sender":
            raise importlib.metadata.PackageNotFoundError(distribution)
        return real(distribution)

    monkeypatch.setattr(importlib.metadata, "version", without_sender)
    code, out, _ = run("--version")
    assert code == 0
    lines = out.splitlines()
    assert "  omnihook-sender     not installed" in lines
    assert f"  omnihook-receiver   {real('omnihook-receiver')}" in lines


def test_schema_of_a_type_by_any_name() -> None:
    code, out, _ = run("schema", "Chat Close")
    assert code == 0
    assert json.loads(out) == json_schema("LivechatSession")


def test_schema_of_every_event_when_no_type() -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert json.loads(out)["title"] == "Rocket.Chat Omnichannel webhook event"


def test_schema_of_an_unknown_type_is_a_usage_error() -> None:
    code, _, err = run("schema", "Chat Paused")
    assert code == 2
    assert "unknown event type 'Chat Paused'" in err


def test_schema_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "close.json"
    code, _, err = run("schema", "LivechatSession", "--output", str(target))
    assert code == 0
    assert json.loads(target.read_text()) == json_schema("LivechatSession")
    assert f"wrote {target}" in err


def test_validate_prints_each_problem_with_its_path(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(samples.sample("chat-close")))
    broken = samples.sample("chat-close")
    broken["messages"][1]["ts"] = "yesterday"
    del broken["visitor"]["username"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    code, out, err = run("validate", str(good), str(bad))
    assert code == 1
    assert f"{good}: ok (LivechatSession, room hX4Lq2rNwPZ8Kc7Ry)" in out
    assert f"{bad}: invalid LivechatSession" in out
    assert "  messages[1].ts: not a Rocket.Chat date" in out
    assert "  visitor.username: required field is missing" in out
    assert "2 payload(s) checked, 1 invalid" in err


def test_validate_reads_jsonl_arrays_and_stdin(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_text(
        "\n".join(
            [
                json.dumps(samples.sample("chat-start")),
                "{broken",
                json.dumps({"type": "Future", "_id": "R"}),
            ]
        )
    )
    array = tmp_path / "all.json"
    array.write_text(json.dumps([samples.sample(name) for name in samples.SAMPLE_NAMES]))
    code, out, err = run("validate", str(capture), str(array), "-", stdin=json.dumps([1, 2]))
    assert code == 1
    assert f"{capture}:1: ok (LivechatSessionStart" in out
    assert f"{capture}:2: not JSON" in out
    assert f"{capture}:3: unknown event type 'Future'" in out
    assert (
        f"{array}[10]: ok (LivechatSession, room fasd6f5a4sd6f8a4sdf, the Send Test sample)" in out
    )
    assert "<stdin>: not a JSON object" in out
    assert f"{3 + len(samples.SAMPLE_NAMES) + 1} payload(s) checked, 2 invalid" in err


def test_validate_notes_unknown_fields_and_missing_files(tmp_path: Path) -> None:
    document = samples.sample("chat-start")
    document["visitor"]["activity"] = []
    path = tmp_path / "new.json"
    path.write_text(json.dumps(document))
    code, out, _ = run("validate", "--quiet", str(path), str(tmp_path / "missing.json"))
    assert code == 1
    assert "note: unknown field visitor.activity (kept)" in out
    assert f"{tmp_path / 'missing.json'}: cannot read:" in out


def test_validate_reports_deep_nesting_instead_of_crashing(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    lines = tmp_path / "deep.jsonl"
    lines.write_text(
        json.dumps(samples.sample("chat-start")) + "\n" + '{"a":' * 5_000 + "1" + "}" * 5_000 + "\n"
    )
    code, out, err = run("validate", str(deep), str(lines))
    assert code == 1
    assert f"{deep}: not JSON\n  nested deeper than 200 levels\n" in out
    assert f"{lines}:1: ok (LivechatSessionStart" in out
    assert f"{lines}:2: not JSON\n  nested deeper than 200 levels\n" in out
    assert "3 payload(s) checked, 2 invalid" in err
