"""Schemathesis against a real ``omnihook serve``, from the document ``omnihook openapi`` writes:
every request it generates (valid payloads of the nine types, payloads broken field by field,
odd headers, a wrong or missing token) is answered with a status the document lists for it, in
JSON, never a 5xx; every payload the schema allows is accepted and every one it refuses is
refused.

The run is bounded (a fixed seed, a fixed number of cases per operation) so that it is the same
in every ``uv run pytest``. For a longer hunt, point schemathesis at a server by hand::

    uv run omnihook openapi -o openapi.json
    OMNIHOOK_TOKEN=tok uv run omnihook serve --port 8765 &
    uv run st run openapi.json -u http://127.0.0.1:8765 \\
        -H "X-RocketChat-Livechat-Token: tok" --checks all -n 500
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnihook.contracts import TOKEN_HEADER

from ..conftest import free_port
from ..processes import OmnihookProcess

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
TOKEN = "schemathesis-token"

# A router with a trigger handler, so that the document's three operations are all served.
HOOKS = """
from omnihook.receiver import Router

router = Router()

@router.on_any
async def keep(event, context):
    return None

@router.trigger
async def greet(request):
    return f"Hello, {request.visitor_token[:8]}"
"""


def schemathesis(document: Path, url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``st run`` over ``document`` against ``url``; its report is in the result's stdout. It runs
    in the document's folder, where it keeps its own state (``.schemathesis/``), with one worker:
    with two threads, hypothesis's source introspection (``ast.parse``) once hit a CPython 3.11
    ``SystemError`` inside schemathesis, an error of the tool that is not the server's."""
    return subprocess.run(
        [SCHEMATHESIS, "run", str(document), "--url", url, "--seed", "20261130",
         "--workers", "1", "--no-color", "--continue-on-failure", *options],
        capture_output=True, text=True, timeout=600, check=False, cwd=document.parent,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The document and the base URL of a real ``omnihook serve`` (SQLite store, worker on)."""
    directory = tmp_path_factory.mktemp("openapi-live")
    (directory / "hooks.py").write_text(HOOKS)
    document = directory / "openapi.json"
    written = subprocess.run([str(Path(sys.executable).with_name("omnihook")), "openapi",
                              "--output", str(document)], capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert written.returncode == 0, written.stderr
    port = free_port()
    server = OmnihookProcess(["serve", "--app", "hooks:router", "--port", str(port)], directory,
                             {"OMNIHOOK_TOKEN": TOKEN, "PYTHONPATH": str(directory)},
                             port=port).start()  # fmt: skip
    try:
        yield document, f"http://127.0.0.1:{port}"
    finally:
        server.stop()
    log = server.output()
    assert "Traceback" not in log, log[-4000:]


def test_every_generated_request_with_the_token_is_answered_as_documented(
    served: tuple[Path, str],
) -> None:
    document, url = served
    # Every check: no 5xx, only documented statuses and content types, answers matching their
    # schema, schema-valid payloads accepted and schema-violating ones refused.
    run = schemathesis(document, url, "--header", f"{TOKEN_HEADER}: {TOKEN}", "--checks", "all",
                       "--max-examples", "40", "--phases", "examples,coverage,fuzzing")  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "POST /rocketchat" in run.stdout or "3/3" in run.stdout, run.stdout[-2000:]


def test_requests_with_generated_tokens_are_refused_as_documented(
    served: tuple[Path, str],
) -> None:
    document, url = served
    # Schemathesis makes up the token header itself (odd strings, missing): 401 for each, and
    # 400 for what cannot be read; nothing else, nothing undocumented.
    run = schemathesis(document, url, "--checks",
                       "not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_schema_conformance,missing_required_header",
                       "--max-examples", "25", "--phases", "coverage,fuzzing")  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
