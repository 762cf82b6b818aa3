"""bridge.toml: validated at start, messages naming the bad key, adapters built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnihook.contracts import EventType
from omnihook.receiver.bridge import (
    BridgeConfigError,
    build_adapters,
    load_bridge_config,
    parse_bridge_config,
)
from omnihook.receiver.crm import (
    HttpForwardAdapter,
    HubSpotAdapter,
    SalesforceAdapter,
    SqlCrmAdapter,
    ZohoAdapter,
)
from omnihook.receiver.ops.breaker import CircuitPolicy
from omnihook.store import Store

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

ENV = {
    "HUBSPOT_TOKEN": "pat-1",
    "ZOHO_CLIENT_ID": "1000.ID",
    "ZOHO_CLIENT_SECRET": "zs",
    "ZOHO_REFRESH_TOKEN": "1000.rt",
    "SALESFORCE_CLIENT_ID": "3MVG",
    "SALESFORCE_CLIENT_SECRET": "ss",
    "DOWNSTREAM_TOKEN": "down",
}


def problem(data: dict[str, object]) -> str:
    with pytest.raises(BridgeConfigError) as caught:
        parse_bridge_config(data, source="bridge.toml")
    return str(caught.value)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda path: path.name)
async def test_every_example_config_builds_its_adapters(example: Path, tmp_path: Path) -> None:
    config = load_bridge_config(example)
    async with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        adapters = build_adapters(config, store, ENV)
    assert adapters
    assert len({adapter.name for adapter in adapters}) == len(adapters)


async def test_a_full_config_gives_each_kind_its_adapter(tmp_path: Path) -> None:
    config = parse_bridge_config(
        {
            "receiver": {"port": 9000, "chat_url": "https://chat.example.com/live/{room_id}"},
            "crm": [
                {"kind": "hubspot", "token_env": "HUBSPOT_TOKEN", "field_map": {"plan": "plan"},
                 "transcript_events": ["Chat Close"]},
                {"kind": "zoho", "client_id_env": "ZOHO_CLIENT_ID", "client_secret_env": "ZOHO_CLIENT_SECRET",
                 "refresh_token_env": "ZOHO_REFRESH_TOKEN", "accounts_url": "https://accounts.zoho.eu", "module": "Contacts"},
                {"kind": "salesforce", "domain_url": "https://acme.my.salesforce.com",
                 "client_id_env": "SALESFORCE_CLIENT_ID", "client_secret_env": "SALESFORCE_CLIENT_SECRET"},
                {"kind": "http", "url": "https://hooks.example.com/rc", "token_env": "DOWNSTREAM_TOKEN",
                 "events": ["chat-close"], "include": ["type", "_id"]},
                {"kind": "sql"},
            ],
        }
    )  # fmt: skip
    async with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        hubspot, zoho, salesforce, http, sql = build_adapters(config, store, ENV)
    assert isinstance(hubspot, HubSpotAdapter)
    assert hubspot.transcript_events == {EventType.CHAT_CLOSE}
    assert hubspot.chat_url == "https://chat.example.com/live/{room_id}"
    assert isinstance(zoho, ZohoAdapter)
    assert zoho.module == "Contacts"
    assert isinstance(salesforce, SalesforceAdapter)
    assert isinstance(http, HttpForwardAdapter)
    assert http.events == {EventType.CHAT_CLOSE}
    assert isinstance(sql, SqlCrmAdapter)
    assert config.receiver.port == 9000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"crm": [{"kind": "hubspot", "token": "pat-123"}]},
            'crm[0].token: secrets do not go in the file; put it in an environment variable and name it: token_env = "VARIABLE"',
        ),
        (
            {"crm": [{"kind": "hubspot", "tokn_env": "X", "token_env": "X"}]},
            "crm[0].tokn_env: unknown key (did you mean token_env?)",
        ),
        (
            {"crm": [{"kind": "zoho", "client_id_env": "A", "client_secret_env": "B"}]},
            "crm[0].refresh_token_env: required key is missing",
        ),
        (
            {"crm": [{"kind": "pipedrive"}]},
            "crm[0].kind: must be one of hubspot, zoho, salesforce, http, sql",
        ),
        (
            {"crm": [{"kind": "hubspot", "token_env": "A"}, {"kind": "hubspot", "token_env": "B"}]},
            "crm[1].name: 'hubspot' is used twice",
        ),
        (
            {"crm": [{"kind": "hubspot", "token_env": "A", "person_events": ["Chat Paused"]}]},
            "crm[0].person_events[0]: unknown event type 'Chat Paused'",
        ),
        (
            {"receiver": {"store": "mysql://x"}},
            "receiver.store: value error, unsupported store URL",
        ),
        (
            {"receiver": {"port": 70000}},
            "receiver.port: input should be less than or equal to 65535",
        ),
        (
            {"receiver": {"store": False}, "crm": [{"kind": "sql"}]},
            "crm[0]: the sql CRM keeps its tables in the store",
        ),
        ({"recever": {}}, "recever: unknown key (did you mean receiver?)"),
    ],
)
def test_mistakes_are_named_by_key(data: dict[str, object], message: str) -> None:
    assert message in problem(data)


async def test_a_missing_environment_variable_stops_the_start_naming_the_key() -> None:
    config = parse_bridge_config(
        {
            "crm": [
                {"kind": "http", "url": "https://x.example"},
                {"kind": "hubspot", "token_env": "HS_TOKEN_NOT_SET"},
            ]
        }
    )
    with pytest.raises(
        BridgeConfigError,
        match=r"crm\[1\]\.token_env: environment variable HS_TOKEN_NOT_SET is not set",
    ):
        build_adapters(config, None, {})


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(BridgeConfigError, match="cannot read"):
        load_bridge_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[receiver\nport = 1")
    with pytest.raises(BridgeConfigError, match="is not valid TOML"):
        load_bridge_config(broken)


def test_each_adapter_gets_its_circuit_policy() -> None:
    config = parse_bridge_config({"crm": [
        {"kind": "http", "url": "https://crm.example/hook", "circuit_failures": 2,
         "circuit_probe_after": "1m", "circuit_max_probe_after": "30m"},
        {"kind": "http", "name": "plain", "url": "https://crm.example/other"},
    ]})  # fmt: skip
    tuned, default = build_adapters(config, None)
    assert tuned.circuit_policy == CircuitPolicy(2, 60.0, 1800.0)
    assert default.circuit_policy == CircuitPolicy()
    with pytest.raises(BridgeConfigError, match="probe_after <= max_probe_after"):
        build_adapters(parse_bridge_config({"crm": [
            {"kind": "http", "url": "https://crm.example/hook", "circuit_probe_after": "1h"}]}),
            None)  # fmt: skip
