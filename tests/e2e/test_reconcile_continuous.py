"""Continuous reconcile as users run it: two ``omnihook worker`` processes with a bridge file whose
``[rocketchat]`` block sets ``reconcile_every``, one store, a Rocket.Chat (the fake) holding chats
whose webhooks never arrived. Exactly one process reconciles; every missing event is rebuilt
once and handled; on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from omnihook.receiver.bridge import BridgeConfigError, parse_bridge_config
from omnihook.sender.fake_rocketchat import FakeRocketChat
from omnihook.sender.simulate import Simulation

from ..processes import OmnihookProcess, query_one, wait_for

SIMULATION = Simulation(seed=9)
CHATS = 8


def bridge_file(directory: Path, rocketchat: FakeRocketChat, store_url: str) -> Path:
    age = datetime.now(UTC) - SIMULATION.start + timedelta(days=1)
    path = directory / "bridge.toml"
    path.write_text(
        f"""
[receiver]
store = "{store_url}"

[rocketchat]
url = "{rocketchat.url}"
reconcile_every = "1s"
reconcile_window = "{int(age.total_seconds())}s"
reconcile_lag = 0
reconcile_not_before = {(SIMULATION.start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}

[[crm]]
kind = "sql"
"""
    )
    return path


def test_workers_reconcile_on_their_own_one_at_a_time(
    store_url: str, tmp_path: Path, httpserver: HTTPServer
) -> None:
    rocketchat = FakeRocketChat(httpserver)
    rocketchat.apply(SIMULATION.settings)
    for chat in SIMULATION.chats(CHATS):
        chat.payloads()
        if chat.builder is not None:
            rocketchat.add_records(chat.builder.records())
    config = bridge_file(tmp_path, rocketchat, store_url)
    env = {"OMNIHOOK_ROCKETCHAT_USER_ID": rocketchat.user_id,
           "OMNIHOOK_ROCKETCHAT_AUTH_TOKEN": rocketchat.auth_token}  # fmt: skip
    workers = [OmnihookProcess(["worker", "--config", str(config)], tmp_path, env).start()
               for _ in range(2)]  # fmt: skip

    def rebuilt() -> int:
        return int(query_one(store_url, tmp_path,
                             "SELECT COUNT(*) FROM {t}events WHERE source = 'reconcile'")[0])  # fmt: skip

    def first_round() -> int | None:
        for worker in workers:
            found = re.search(r"reconcile: \d+ room\(s\), \d+ event\(s\) Rocket.Chat sent, (\d+) rebuilt",
                              worker.output())  # fmt: skip
            if found:
                return int(found.group(1))
        return None

    try:
        wait_for(lambda: first_round() is not None, 60, "a first reconcile round")
        assert (first_round() or 0) > 30
        assert rebuilt() == first_round()
        wait_for(lambda: sum(w.output().count("Rocket.Chat sent") for w in workers) >= 3, 60,
                 "two more rounds")  # fmt: skip
        assert rebuilt() == first_round()  # nothing left to rebuild
        wait_for(
            lambda: query_one(store_url, tmp_path,
                              "SELECT COUNT(*) FROM {t}events WHERE status <> 'done'")[0] == 0,
            60, "every rebuilt event handled",
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.stop()
    logs = [worker.output() for worker in workers]
    assert all("reconciling with Rocket.Chat every 1 s" in log for log in logs)
    rounds = [log.count("Rocket.Chat sent") for log in logs]
    assert sum(rounds) >= 2
    assert 0 in rounds  # only one of the two ever held the lock
    contacts = query_one(store_url, tmp_path, "SELECT COUNT(*) FROM {t}crm_contacts")[0]
    assert contacts > 0  # the SQL CRM got the rebuilt chats


def test_the_bridge_file_checks_the_reconcile_settings() -> None:
    parsed = parse_bridge_config({"rocketchat": {
        "url": "https://chat.example.com", "reconcile_every": "10m", "reconcile_window": "2d",
        "webhook_events": ["Chat Close", "Visitor Messages"]}})  # fmt: skip
    assert parsed.rocketchat is not None
    assert parsed.rocketchat.reconcile_every == 600
    assert parsed.rocketchat.reconcile_window == 2 * 86400
    assert parsed.rocketchat.reconcile_lag == 300
    switches = parsed.rocketchat.switches()
    assert switches is not None
    assert switches.sends("Chat Close")
    assert parsed.rocketchat.reconcile_not_before is None  # from the first webhook on
    with pytest.raises(BridgeConfigError, match="reconcile_every"):
        parse_bridge_config({"rocketchat": {"url": "https://c", "reconcile_every": "soon"}})
    with pytest.raises(BridgeConfigError, match="webhook_events"):
        parse_bridge_config({"rocketchat": {"url": "https://c", "webhook_events": ["Nope"]}})
    with pytest.raises(BridgeConfigError, match=r"reconcile_window \(300 s\) is shorter than"):
        parse_bridge_config({"rocketchat": {"url": "https://c", "reconcile_every": "1h",
                                            "reconcile_window": "5m"}})  # fmt: skip
    dated = parse_bridge_config({"rocketchat": {"url": "https://c",
                                                "reconcile_not_before": "2026-11-01T00:00:00Z"}})  # fmt: skip
    assert dated.rocketchat is not None
    assert dated.rocketchat.reconcile_not_before == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    with pytest.raises(BridgeConfigError, match="has no time zone"):
        parse_bridge_config({"rocketchat": {"url": "https://c",
                                            "reconcile_not_before": "2026-11-01T00:00:00"}})  # fmt: skip
    with pytest.raises(BridgeConfigError, match="is not an ISO date"):
        parse_bridge_config({"rocketchat": {"url": "https://c",
                                            "reconcile_not_before": "last week"}})  # fmt: skip


def test_serve_reconciles_on_its_own_too(tmp_path: Path, httpserver: HTTPServer) -> None:
    from ..conftest import free_port

    rocketchat = FakeRocketChat(httpserver)
    rocketchat.apply(SIMULATION.settings)
    for chat in SIMULATION.chats(3):
        chat.payloads()
        if chat.builder is not None:
            rocketchat.add_records(chat.builder.records())
    store_url = f"sqlite:///{tmp_path / 'omnihook.db'}"
    config = bridge_file(tmp_path, rocketchat, store_url)
    port = free_port()
    env = {"OMNIHOOK_ROCKETCHAT_USER_ID": rocketchat.user_id, "OMNIHOOK_TOKEN": "t0ken-t0ken",
           "OMNIHOOK_ROCKETCHAT_AUTH_TOKEN": rocketchat.auth_token}  # fmt: skip
    serve = OmnihookProcess(["serve", "--config", str(config), "--port", str(port)], tmp_path,
                            env, port).start()  # fmt: skip
    try:
        wait_for(lambda: "Rocket.Chat sent" in serve.output(), 60, "a reconcile round in serve")
        wait_for(
            lambda: query_one(store_url, tmp_path,
                              "SELECT COUNT(*) FROM events WHERE source = 'reconcile' "
                              "AND status = 'done'")[0] > 10,
            60, "rebuilt events handled by serve's worker",
        )  # fmt: skip
    finally:
        serve.stop()
    assert rocketchat.auth_token not in serve.output()  # the bot's token never in a log line
