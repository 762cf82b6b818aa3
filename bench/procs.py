"""Running benchmark processes: free ports, servers that are up before load starts, peak memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "free_port",
    "launch",
    "peak_rss_mb",
    "python_json",
    "start_server",
    "stop",
    "wait_ready",
]

ROOT = Path(__file__).resolve().parents[1]


_given: set[int] = set()
_giving = threading.Lock()


def free_port() -> int:
    """A free port, never the same twice in a run (parts may start servers at the same time)."""
    with _giving:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _given:
                _given.add(port)
                return port


def start_server(
    command: Sequence[str], port: int, env: dict[str, str] | None = None, health: str = "/healthz"
) -> subprocess.Popen[bytes]:
    """Start ``command`` and wait until ``http://127.0.0.1:port{health}`` answers anything."""
    process = launch(command, env)
    wait_ready(process, port, health)
    return process


def launch(command: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` (a server: :func:`wait_ready` waits for it); servers that start
    together share the cores while they import."""
    return subprocess.Popen(list(command), env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip


def wait_ready(
    process: subprocess.Popen[bytes], port: int, health: str = "/healthz", timeout: float = 30
) -> None:
    """Wait until ``http://127.0.0.1:port{health}`` answers anything; kill the process if it
    does not within ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"{process.args} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) of ``pid`` and its children, in MiB."""
    peaks = [_vm_hwm(pid)]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    peaks += [_vm_hwm(int(child)) for child in children]
    return max(peaks) / 1024


def _vm_hwm(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def python_json(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` (a benchmark client in its own process); its last stdout line
    is a JSON object."""
    import json

    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})  # fmt: skip
    if result.returncode:
        sys.stderr.write(result.stderr)
        raise RuntimeError(f"python -m {module} {' '.join(args)} exited with {result.returncode}: "
                           + (result.stderr.strip().splitlines() or [""])[-1])  # fmt: skip
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed
