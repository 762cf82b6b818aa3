"""The HTTP edge: the same receiver app in each candidate server, for throughput and against
hostile clients.

Candidates: uvicorn with httptools (no limits: the baseline), uvicorn with omnihook's guarded
httptools protocol (what ``omnihook serve`` runs), uvicorn with h11 and its incomplete-event
limit, uvicorn with zttp, Granian and Hypercorn, each under limits as close to
``bench.edge_servers.LIMITS`` as it offers. Each runs in its own process; the load
(``bench.load``) is the receiver benchmark's, and the probes are raw sockets from this process:

- a 64 MiB header streamed in 1 MiB pieces while ``/healthz`` is asked on other connections;
- a silent client, one trickling its head (a byte every 0.5 s), one whose body is shorter than
  its Content-Length, one trickling its body; each watched for ``Probes.seconds``.

Whole processes under load vary by several percent from turn to turn on a shared machine; the
guarded protocol's own cost per request, without that noise, is ``python -m bench.edge_micro``.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .edge_servers import LIMITS
from .procs import free_port, launch, peak_rss_mb, python_json, stop, wait_ready
from .servers import TOKEN

__all__ = ["PROBES", "EdgeTarget", "Probes", "edge_targets", "probe_hostile", "run_edge"]

TRICKLE_EVERY = 0.5


@dataclass(frozen=True)
class Probes:
    """How hard the hostile clients push."""

    seconds: float = 6.0
    """How long each slow client is watched."""
    flood_bytes: int = 64 << 20
    """The size of the flooding header."""


PROBES = Probes()


@dataclass(frozen=True)
class EdgeTarget:
    key: str
    name: str
    command: Callable[[int], list[str]]
    """The server's command line for a port."""


def _uvicorn(http: str, *extra: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "bench.servers:inline", "--factory",
                "--port", str(port), "--loop", "uvloop", "--http", http, "--no-access-log",
                "--log-level", "warning", "--timeout-keep-alive", f"{LIMITS.keep_alive_timeout:.0f}",
                *extra]  # fmt: skip

    return command


def _granian(port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop",
            "--http", "1", "--no-ws", "--log-level", "warning",
            "--http1-header-read-timeout", f"{LIMITS.header_timeout * 1000:.0f}",
            "--http1-buffer-size", str(LIMITS.max_header_bytes), "bench.servers:inline"]  # fmt: skip


def _hypercorn(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.edge_servers", "hypercorn", "--port", str(port)]


def edge_targets() -> list[EdgeTarget]:
    """The candidates, the baseline first."""
    return [
        EdgeTarget("httptools", "uvicorn, httptools (no limits)", _uvicorn("httptools")),
        EdgeTarget("guarded", "uvicorn, omnihook's guarded httptools",
                   _uvicorn("bench.edge_servers:GuardedProtocol")),
        EdgeTarget("h11", "uvicorn, h11 (incomplete-event limit)",
                   _uvicorn("h11", "--h11-max-incomplete-event-size", str(LIMITS.max_header_bytes))),
        EdgeTarget("zttp", "uvicorn, zttp", _uvicorn("zttp")),
        EdgeTarget("granian", "Granian (ASGI, HTTP/1)", _granian),
        EdgeTarget("hypercorn", "Hypercorn (h11)", _hypercorn),
    ]  # fmt: skip


def run_edge(
    targets: list[EdgeTarget],
    payloads: list[str],
    concurrency: int,
    duration: float,
    rounds: int = 4,
    warmup: float = 0.5,
    probes: Probes = PROBES,
) -> dict[str, tuple[dict[str, dict[str, float]], dict[str, str | float]]]:
    """Load every target with each payload, then probe each with hostile clients.

    The servers run side by side and take turns: ``rounds`` rounds, each giving every target
    ``duration / rounds`` seconds of load with each payload, so that a change in the machine's
    background load weighs on all of them alike. Per target and payload: events/s over all its
    turns, the mean of its turns' p50 and p99, the server's peak RSS after the loads; then the
    probes' outcomes.
    A target that does not start is left out (and said so on stderr).
    """
    servers = {}
    launched = []
    try:
        for target in targets:  # started together: they import side by side
            port = free_port()
            launched.append((target, port, launch(target.command(port))))
        for target, port, process in launched:
            try:
                wait_ready(process, port)
                servers[target.key] = (port, process)
            except RuntimeError as exc:
                print(f"  {target.name}: {exc}", file=sys.stderr)
        turns: dict[str, dict[str, list[dict[str, float]]]] = {
            key: {p: [] for p in payloads} for key in servers
        }
        for _ in range(rounds):
            for key, (port, _server) in servers.items():
                loads = python_json("bench.load", f"http://127.0.0.1:{port}/rocketchat",
                                    *(f"--payload={payload}" for payload in payloads),
                                    "--concurrency", str(concurrency), "--duration", str(duration / rounds),
                                    "--warmup", str(warmup), "--token", TOKEN)  # fmt: skip
                for payload in payloads:
                    turns[key][payload].append(loads[payload])
        results = {}
        for key, (port, server) in servers.items():
            loads = {payload: _combine(turns[key][payload]) for payload in payloads}
            rss = peak_rss_mb(server.pid)
            for load in loads.values():
                load["peak_rss_mb"] = rss
            hostile = probe_hostile(port, probes)
            hostile["peak_rss_mb"] = peak_rss_mb(server.pid)
            results[key] = (loads, hostile)
    finally:
        for _target, _port, process in launched:
            stop(process)
    return results


def _combine(turns: list[dict[str, float]]) -> dict[str, float]:
    requests = sum(turn["requests"] for turn in turns)
    seconds = sum(turn["seconds"] for turn in turns)
    return {
        "requests": requests,
        "errors": sum(turn["errors"] for turn in turns),
        "seconds": seconds,
        "per_second": requests / seconds,
        "p50_ms": sum(turn["p50_ms"] for turn in turns) / len(turns),
        "p99_ms": sum(turn["p99_ms"] for turn in turns) / len(turns),
    }


def probe_hostile(port: int, probes: Probes = PROBES) -> dict[str, str | float]:
    """The outcome of each hostile client against the server on ``port``."""
    results: dict[str, str | float] = {}
    flood: dict[str, str] = {}
    flooder = threading.Thread(
        target=lambda: flood.update(_flood(port, probes.flood_bytes)), daemon=True
    )
    flooder.start()
    healthz: list[float] = []
    while flooder.is_alive():
        healthz.append(_healthz_seconds(port))
        time.sleep(0.02)
    flooder.join()
    results["flood"] = flood["outcome"]
    results["healthz_max_ms"] = max(healthz, default=0.0) * 1000
    head = b"POST /rocketchat HTTP/1.1\r\nHost: bench\r\nX-Pad: " + b"p" * 64 + b"\r\n\r\n"
    body_head = (b"POST /rocketchat HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 b"X-RocketChat-Livechat-Token: %s\r\nContent-Length: 1000\r\n\r\n" % TOKEN.encode())  # fmt: skip
    scripts = {
        "silent": (b"", b""),
        "trickled head": (b"", head),
        "short body": (body_head + b'{"type":"Message"', b""),
        "trickled body": (body_head, b" " * 100),
    }
    with ThreadPoolExecutor(len(scripts)) as pool:
        futures = {
            name: pool.submit(_slow_client, port, *script, probes.seconds)
            for name, script in scripts.items()
        }
        for name, future in futures.items():
            results[name] = future.result()
    return results


def _flood(port: int, flood_bytes: int) -> dict[str, str]:
    """Stream a ``flood_bytes`` header; what the server answered, and when."""
    chunk = b"a" * (1 << 20)
    sent = 0
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: ")
            while sent < flood_bytes:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass
        answer = _read_until_closed(sock, 120)
    elapsed = time.perf_counter() - started
    what = _status(answer) or "closed"
    return {"outcome": f"{what} after {elapsed:.2f} s, {sent >> 20} MiB sent"}


def _healthz_seconds(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        _read_until_closed(sock, 120)
    return time.perf_counter() - started


def _slow_client(port: int, first: bytes, trickle: bytes, seconds: float) -> str:
    """Send ``first``, then ``trickle`` a byte every ``TRICKLE_EVERY`` s; the server's answer (or
    its close) and when, or that the connection was still open after ``seconds``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(0.05)
        started = time.monotonic()
        if first:
            sock.sendall(first)
        sent, due = 0, started + TRICKLE_EVERY
        received = b""
        while (elapsed := time.monotonic() - started) < seconds:
            if sent < len(trickle) and time.monotonic() >= due:
                with contextlib.suppress(OSError):  # the server may have closed already
                    sock.send(trickle[sent : sent + 1])
                sent, due = sent + 1, due + TRICKLE_EVERY
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return f"{_status(received) or 'closed'} at {elapsed:.1f} s"
            received += chunk
        return f"open at {seconds:g} s" + (f" ({_status(received)})" if received else "")


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def _status(answer: bytes) -> str:
    if not answer.startswith(b"HTTP/"):
        return ""
    return answer.split(b" ", 2)[1].decode("ascii", "replace")
