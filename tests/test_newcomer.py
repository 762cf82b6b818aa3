"""A newcomer's first commands, run as real processes in an empty folder: the README's
`omnihook serve`, then the client and read commands without any configuration."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from .conftest import free_port
from .processes import OMNIHOOK, OmnihookProcess

NO_STORE = (
    "Error: no store at ./omnihook.db: start `omnihook serve` first or pass --store "
    "($OMNIHOOK_STORE)\n"
)


def omnihook(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIHOOK_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [OMNIHOOK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_from_an_empty_folder_to_a_stored_chat(tmp_path: Path) -> None:
    # Before anything was received, the read commands say so and leave no database behind.
    for args in (["events", "list"], ["contacts", "list"], ["conversations", "list"]):
        looked = omnihook(tmp_path, *args)
        assert (looked.returncode, looked.stdout, looked.stderr) == (1, "", NO_STORE), args
    assert list(tmp_path.iterdir()) == []

    port = free_port()
    server = OmnihookProcess(["serve", "--port", str(port)], tmp_path, {}, port).start()
    try:
        token_file = tmp_path / "omnihook.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}/rocketchat"

        # The second command of the README works without copying the token anywhere.
        tested = omnihook(tmp_path, "send-test", url)
        assert (tested.returncode, tested.stdout) == (0, "It works\n"), tested.stderr
        assert tested.stderr.startswith("token: from ./omnihook.token")

        # A URL typed without its scheme is one line saying what to add.
        typo = omnihook(tmp_path, "send-test", f"127.0.0.1:{port}/rocketchat")
        assert typo.returncode == 2
        assert "Traceback" not in typo.stderr
        assert typo.stderr.splitlines()[-1] == (
            f"Error: Invalid value for 'URL': 127.0.0.1:{port}/rocketchat has no scheme: "
            f"add http:// (http://127.0.0.1:{port}/rocketchat)"
        )

        played = omnihook(tmp_path, "simulate", url, "--chats", "2", "--seed", "7")
        assert played.returncode == 0, played.stdout + played.stderr

        deadline = time.monotonic() + 30
        while True:
            listed = omnihook(tmp_path, "conversations", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            found = [json.loads(line) for line in listed.stdout.splitlines()]
            if len(found) == 2 and all(c["status"] == "closed" for c in found):
                break
            assert time.monotonic() < deadline, f"conversations not all closed: {found}"
            time.sleep(0.2)
        assert all(c["messages"] > 0 and c["contact_name"] for c in found)
        table = omnihook(tmp_path, "conversations", "list")
        assert all(c["room_id"] in table.stdout for c in found)

        # A stored event shows its payload without the visitor's Livechat token.
        events = omnihook(tmp_path, "events", "list", "--json")
        first = json.loads(events.stdout.splitlines()[-1])
        shown = omnihook(tmp_path, "events", "show", str(first["id"]))
        assert shown.returncode == 0, shown.stderr
        assert '"token": "***"' in shown.stdout
        assert "--show-secrets shows it" in shown.stdout
        revealed = omnihook(tmp_path, "events", "show", str(first["id"]), "--show-secrets")
        assert '"token": "***"' not in revealed.stdout

        # A token file others can read still works, with one line of warning.
        token_file.chmod(0o644)
        loose = omnihook(tmp_path, "send-test", url)
        assert loose.returncode == 0, loose.stderr
        assert loose.stderr.splitlines() == [
            "warning: group/others can access token file omnihook.token (mode 644): "
            "run chmod 600 omnihook.token",
            "token: from ./omnihook.token (set $OMNIHOOK_TOKEN or --token-file to send another)",
        ]
    finally:
        server.stop()
