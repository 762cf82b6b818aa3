"""Running benchmark processes: free ports, servers that are up before load starts, peak memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["ROOT", "free_port", "peak_rss_mb", "python_json", "start_server", "stop"]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    command: Sequence[str], port: int, env: dict[str, str] | None = None, health: str = "/healthz"
) -> subprocess.Popen[bytes]:
    """Start ``command`` and wait until ``http://127.0.0.1:port{health}`` answers anything."""
    process = subprocess.Popen(list(command), env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                               cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


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


def python_json(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``python -m module args`` (a benchmark client in its own process); its last stdout line
    is a JSON object."""
    import json

    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, check=True,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})  # fmt: skip
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed
