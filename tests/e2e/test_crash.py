"""kill -9 in the middle, everywhere: the sender sends N events through its outbox to a real
receiver; the receiver is killed and restarted, then the sender, then the worker. Every event is
stored once and handled; nothing is lost. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..conftest import free_port
from ..processes import OmnihookProcess, query_one, read_effects, wait_for, write_hooks

ROOMS = 30
PER_ROOM = 20
TOKEN = "crash-token"
WORKER_CONCURRENCY = 8
SENDER = Path(__file__).with_name("outbox_sender.py")


def test_kill_9_receiver_sender_and_worker_lose_nothing(store_url: str, tmp_path: Path) -> None:
    effects = write_hooks(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/rocketchat"
    env = {"OMNIHOOK_TOKEN": TOKEN, "OMNIHOOK_STORE": store_url, "EFFECTS_DIR": str(effects),
           "HANDLER_DELAY": "0.01"}  # fmt: skip
    total = ROOMS * PER_ROOM

    def receiver() -> OmnihookProcess:
        return OmnihookProcess(
            ["serve", "--app", "hooks:router", "--no-worker", "--port", str(port)],
            tmp_path,
            env,
            port,
        )

    def worker() -> OmnihookProcess:
        args = [
            "worker",
            "--app",
            "hooks:router",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--lease",
            "2",
        ]
        return OmnihookProcess(args, tmp_path, env)

    def sender() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(SENDER), "deliver", url, store_url], cwd=tmp_path,
                                stdout=(tmp_path / f"sender-{time.time_ns()}.log").open("w"), stderr=subprocess.STDOUT)  # fmt: skip

    def stored() -> int:
        return int(query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}events")[0])

    def handled() -> int:
        return int(
            query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}events WHERE status = 'done'")[
                0
            ]
        )

    def delivered() -> int:
        return int(
            query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}outbox WHERE status = 'done'")[
                0
            ]
        )

    subprocess.run([sys.executable, str(SENDER), "enqueue", url, store_url, str(ROOMS), str(PER_ROOM)],
                   check=True, cwd=tmp_path, timeout=60)  # fmt: skip
    processes = [receiver().start(), worker().start()]
    sending = sender()
    try:
        wait_for(lambda: stored() >= total // 4, 60, "a quarter stored")
        processes[0].kill9()  # the receiver dies mid-stream
        time.sleep(0.5)
        processes[0] = receiver().start()

        wait_for(lambda: delivered() >= total // 2, 60, "half delivered")
        sending.kill()  # the sender dies with deliveries in flight
        sending.wait()
        sending = sender()

        wait_for(lambda: handled() >= 3 * total // 4, 60, "three quarters handled")
        processes[1].kill9()  # the worker dies mid-handling
        processes[1] = worker().start()

        wait_for(
            lambda: delivered() == total and handled() == total,
            120,
            "everything delivered and handled",
        )
        assert sending.wait(timeout=30) == 0
    finally:
        if sending.poll() is None:
            sending.kill()
        for process in processes:
            process.stop()

    assert stored() == total  # every delivery stored once, whatever was re-sent
    dead = query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}outbox WHERE status <> 'done'")
    assert dead == (0,)
    executions = read_effects(effects)
    keys = {(e["room"], e["n"]) for e in executions}
    assert keys == {(f"R{r}", n) for r in range(ROOMS) for n in range(PER_ROOM)}  # none lost
    # Only the events the killed worker held can have run twice (their outcome was not saved);
    # a CRM dedups those by context.dedup_key. Receiver and sender kills cause no second run.
    assert len(executions) - total <= WORKER_CONCURRENCY
    first_runs: dict[str, list[int]] = defaultdict(list)
    for effect in sorted(executions, key=lambda e: e["t"]):
        if effect["n"] not in first_runs[effect["room"]]:
            first_runs[effect["room"]].append(effect["n"])
    assert all(order == list(range(PER_ROOM)) for order in first_runs.values())  # rooms in order
    print(f"\n{total} events; {len(executions) - total} re-run after the worker's kill -9")


def test_sigterm_makes_a_worker_hand_back_its_events_and_exit(
    store_url: str, tmp_path: Path
) -> None:
    import httpx

    from omnihook.contracts import TOKEN_HEADER

    from ..processes import message

    effects = write_hooks(tmp_path)
    port = free_port()
    env = {"OMNIHOOK_TOKEN": TOKEN, "OMNIHOOK_STORE": store_url, "EFFECTS_DIR": str(effects),
           "HANDLER_DELAY": "60"}  # fmt: skip
    receiver = OmnihookProcess(
        ["serve", "--no-worker", "--port", str(port)], tmp_path, env, port
    ).start()
    worker = OmnihookProcess(
        ["worker", "--app", "hooks:router", "--grace", "0.5"], tmp_path, env
    ).start()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/rocketchat",
            json=message("R1", 0),
            headers={TOKEN_HEADER: TOKEN},
        )
        assert response.status_code == 200
        status = "SELECT status, attempts, lease_owner FROM {t}events"
        wait_for(
            lambda: query_one(store_url, tmp_path, status)[0] == "processing",
            30,
            "the worker to claim",
        )
        stopping = time.monotonic()
        worker.stop()  # SIGTERM
        assert time.monotonic() - stopping < 10
        assert worker.process is not None
        assert worker.process.returncode == 0
        assert query_one(store_url, tmp_path, status) == ("pending", 0, None)
        assert "released 1 event(s) still being handled" in worker.output()
    finally:
        worker.stop()
        receiver.stop()
