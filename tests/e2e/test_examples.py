"""The examples users copy must work as the README and the docs say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omnihook.receiver import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_handlers_example_under_a_real_server_driven_by_the_send_chat_example(
    serve_app: Any,
) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from examples import handlers
    finally:
        sys.path.remove(str(ROOT))
    handlers.conversations.clear()
    receiver = serve_app(create_app(handlers.router, tokens=["ex-token"]))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "send_chat.py"), f"{receiver.url}/rocketchat"],
        env={**os.environ, "OMNIHOOK_TOKEN": "ex-token"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == 'chat-start       -> 200 {"conversation":"hX4Lq2rNwPZ8Kc7Ry"}'
    assert (
        lines[-1]
        == 'chat-close       -> 200 {"conversation":"hX4Lq2rNwPZ8Kc7Ry","transcript_lines":6}'
    )
    record = handlers.conversations["hX4Lq2rNwPZ8Kc7Ry"]
    assert record["email"] == "jane.doe@example.com"
    assert record["said"] == ["Thanks! It was due on Monday."]
    assert record["transcript"].count("\n") == 5
    assert record["closed_by"] == "user"


def test_the_docs_show_the_kit_examples_as_they_are() -> None:
    # The two kit examples of docs/testing.md are these files (which `uv run pytest` runs), minus
    # the docstring: if one changes, the page must change with it.
    page = (ROOT / "docs" / "testing.md").read_text()
    for name in ("test_handlers.py", "test_send_chat.py"):
        source = (ROOT / "examples" / name).read_text()
        body = source.split('"""', 2)[2].lstrip("\n")
        assert f"```python\n{body}```" in page, f"docs/testing.md does not show examples/{name}"
