"""Metrics across processes: ``omnihook serve --no-worker`` takes a chat, an ``omnihook worker``
handles it; each process counts what it did, and both report the store's backlog as it is,
whoever wrote it. Then ``omnihook status`` says all is well, or what needs attention."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from omnihook.contracts import TOKEN_HEADER, samples

from ..conftest import free_port
from ..processes import OMNIHOOK, OmnihookProcess, wait_for

TOKEN = "metrics-e2e-token"
CHAT = ["chat-start", "chat-taken", "visitor-message", "agent-message", "chat-close"]


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(url, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}  # fmt: skip


def total(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def status(store_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OMNIHOOK, "status", "--store", store_url, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_two_processes_count_their_own_work_and_report_the_stores_backlog(
    store_url: str, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {"OMNIHOOK_TOKEN": TOKEN, "OMNIHOOK_METRICS_TOKEN": "scrape-token"}
    serve = OmnihookProcess(["serve", "--port", str(port), "--store", store_url, "--no-worker"],
                            tmp_path, env, port=port).start()  # fmt: skip
    worker: OmnihookProcess | None = None
    try:
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(metrics).status_code == 401  # the token in OMNIHOOK_METRICS_TOKEN
        for name in CHAT:
            answer = httpx.post(f"http://127.0.0.1:{port}/rocketchat", json=samples.sample(name),
                                headers={TOKEN_HEADER: TOKEN})  # fmt: skip
            assert answer.status_code == 200
        held = scrape(metrics, Authorization="Bearer scrape-token")
        assert total(held, "omnihook_events_accepted_total") == 5
        assert total(held, "omnihook_events", status="pending") == 5
        assert total(held, "omnihook_handling_total") == 0  # this process handles nothing
        waiting = status(store_url, tmp_path, "--max-pending-age", "0", "--json")
        assert waiting.returncode == 1
        assert "is a worker running?" in json.loads(waiting.stdout)["problems"][0]

        worker = OmnihookProcess(["worker", "--store", store_url, "--metrics-port",
                                  str(metrics_port)], tmp_path, {}).start()  # fmt: skip
        worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_for(lambda: total(scrape(metrics, Authorization="Bearer scrape-token"),
                               "omnihook_events", status="pending") == 0, 30, "the handling")  # fmt: skip
        wait_for(lambda: serving(worker_metrics), 30, "the worker's metrics port")
        handled = scrape(worker_metrics)  # its own port: no token
        assert total(handled, "omnihook_handling_total", outcome="done") == 10  # 2 handlers each
        assert total(handled, "omnihook_handling_delay_seconds_count") == 5
        assert total(handled, "omnihook_events_accepted_total") == 0  # it received nothing
        after = scrape(metrics, Authorization="Bearer scrape-token")
        assert total(after, "omnihook_events", status="dead") == 0
        assert total(after, "omnihook_events_oldest_pending_age_seconds") == 0
    finally:
        serve.stop()
        if worker is not None:
            worker.stop()
    well = status(store_url, tmp_path)
    assert well.returncode == 0, well.stdout + well.stderr
    assert "all well" in well.stdout
    assert "events: 0 pending, 0 processing, 0 failed, 0 dead" in well.stdout
