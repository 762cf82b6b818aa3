"""``bridge.toml``: receiver settings, the store and CRM adapters, from one file, validated at
start with messages that name the bad key (``crm[1].token_env: ...``).

Secrets never sit in the file: every secret setting is a ``*_env`` key naming an environment
variable. See ``examples/*.toml`` for a working file per CRM.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from omnihook.contracts import EventType, format_path
from omnihook.store import DEFAULT_STORE_URL, Store, parse_store_url, register_secret

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH
from .crm import (
    DEFAULT_PERSON_EVENTS,
    DEFAULT_TRANSCRIPT_EVENTS,
    CrmAdapter,
    HttpForwardAdapter,
    HubSpotAdapter,
    SalesforceAdapter,
    SqlCrmAdapter,
    ZohoAdapter,
)
from .crm.base import LinkStore, MemoryLinks
from .ops.alerts import CONDITIONS, AlertRules, AlertTarget, target_from
from .ops.breaker import CircuitPolicy
from .reconcile import ReconcileLoop, WebhookSwitches, parse_duration
from .rest import RocketChatApi
from .worker import DEFAULT_CONCURRENCY

__all__ = [
    "AlertBlock",
    "BridgeConfig",
    "BridgeConfigError",
    "build_adapters",
    "build_alert_routes",
    "build_reconcile_loop",
    "build_rocketchat_api",
    "load_bridge_config",
    "record_urls",
]

_SECRET_KEYS = {
    "token",
    "secret",
    "password",
    "client_secret",
    "refresh_token",
    "client_id",
    "api_key",
}


class BridgeConfigError(ValueError):
    """A bridge file that cannot be used; the message names the key and what is wrong."""


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReceiverSettings(_Block):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    path: str = DEFAULT_PATH
    token_env: str = "OMNIHOOK_TOKEN"
    token_file: str | None = None
    store: str | None = DEFAULT_STORE_URL
    """``None`` (``store = false`` in the file) for inline mode."""
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1)
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1)
    max_attempts: int = Field(8, ge=1)
    max_age: float = Field(86400.0, gt=0)
    handler_timeout: float = Field(60.0, gt=0)
    chat_url: str | None = None
    """Link back to a chat in transcripts, with ``{room_id}``; each [[crm]] block may override it."""

    @field_validator("store", mode="before")
    @classmethod
    def _store(cls, value: Any) -> Any:
        if value is False:
            return None
        if isinstance(value, str):
            parse_store_url(value)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value


class _CrmBlock(_Block):
    name: str | None = None
    chat_url: str | None = None
    record_urls: dict[str, str] = Field(default_factory=dict)
    """For the console: an id the adapter keeps (``contactId``) → the URL of its record, with
    ``{id}`` where the id goes (``https://app.hubspot.com/contacts/PORTAL/record/0-1/{id}``)."""
    # The adapter's circuit breaker (omnihook.receiver.ops.breaker); 0 failures: none.
    circuit_failures: int = Field(5, ge=0)
    circuit_probe_after: float = Field(30.0, gt=0)
    circuit_max_probe_after: float = Field(600.0, gt=0)

    @field_validator("record_urls")
    @classmethod
    def _record_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not url.startswith(("https://", "http://")) or "{id}" not in url:
                raise ValueError(f"{name}: a record URL is an http(s) URL with {{id}} in it")
        return value

    @field_validator("circuit_probe_after", "circuit_max_probe_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else parse_duration(value)

    def circuit(self) -> CircuitPolicy:
        try:
            return CircuitPolicy(self.circuit_failures, self.circuit_probe_after,
                                 self.circuit_max_probe_after)  # fmt: skip
        except ValueError as exc:
            raise BridgeConfigError(str(exc)) from None


class _RecordBlock(_CrmBlock):
    field_map: dict[str, str] = Field(default_factory=dict)
    """Rocket.Chat custom field (visitor's or room's) → CRM field."""
    person_events: list[str] | None = None
    transcript_events: list[str] | None = None
    timeout: float = Field(10.0, gt=0)


class HubSpotBlock(_RecordBlock):
    kind: Literal["hubspot"]
    token_env: str
    base_url: str = "https://api.hubapi.com"
    api_prefix: str = "/crm/v3"
    owner_from_agent: bool = True


class ZohoBlock(_RecordBlock):
    kind: Literal["zoho"]
    client_id_env: str
    client_secret_env: str
    refresh_token_env: str
    accounts_url: str = "https://accounts.zoho.com"
    api_version: str = "v8"
    module: Literal["Leads", "Contacts"] = "Leads"
    duplicate_check_fields: list[str] = Field(default_factory=lambda: ["Email"])
    lead_source: str | None = "Chat"


class SalesforceBlock(_RecordBlock):
    kind: Literal["salesforce"]
    domain_url: str
    client_id_env: str
    client_secret_env: str
    external_id_field: str = "RC_Visitor_Id__c"
    external_id_source: Literal["visitor_id", "email"] = "visitor_id"
    company: str = "[not provided]"
    lead_source: str | None = "Chat"
    api_version: str = "v62.0"


class HttpBlock(_CrmBlock):
    kind: Literal["http"]
    url: str
    token_env: str | None = None
    token_header: str = "X-RocketChat-Livechat-Token"
    include: list[str] | None = None
    """Dotted fields to forward (``visitor.email``); the whole payload when absent."""
    events: list[str] | None = None
    timeout: float = Field(5.0, gt=0)
    attempts: int = Field(3, ge=1)
    delay: float = Field(1.0, ge=0)


class SqlBlock(_CrmBlock):
    kind: Literal["sql"]


CrmBlock = Annotated[
    HubSpotBlock | ZohoBlock | SalesforceBlock | HttpBlock | SqlBlock, Field(discriminator="kind")
]


class RocketChatSettings(_Block):
    """The Rocket.Chat bot user (a personal access token) that ``context.reply`` posts as and
    that reconcile reads with; with ``reconcile_every``, ``serve`` and ``worker`` reconcile on
    their own (one process at a time per store)."""

    url: str
    user_id_env: str = "OMNIHOOK_ROCKETCHAT_USER_ID"
    auth_token_env: str = "OMNIHOOK_ROCKETCHAT_AUTH_TOKEN"
    timeout: float = Field(10.0, gt=0)
    reconcile_every: float | None = None
    """Seconds (or "10m") between two reconcile rounds; none: no continuous reconcile."""
    reconcile_window: float = 86400.0
    """How far back each round looks (default 24h)."""
    reconcile_lag: float = 300.0
    """How far behind now each round stops, so deliveries in flight are not taken for gaps."""
    reconcile_not_before: float | None = None
    """Nothing older is rebuilt (an ISO date with a time zone). Default: the first webhook the
    store received, so that turning reconcile on does not replay the past into a CRM."""
    webhook_events: list[str] | None = None
    """The webhook switches that are on, when the bot may not read Rocket.Chat's settings."""
    navigation_history: bool = False
    """With ``webhook_events``: whether navigation history is sent too."""

    @field_validator("reconcile_every", "reconcile_window", "reconcile_lag", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        return parse_duration(value)

    @field_validator("reconcile_not_before", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO date (2026-11-01T00:00:00Z)") from None
        if isinstance(value, datetime):  # TOML writes dates bare: 2026-11-01T00:00:00Z
            if value.tzinfo is None:
                raise ValueError(f"{value.isoformat()} has no time zone: add Z (UTC) or an offset")
            return value.timestamp()
        return value

    @model_validator(mode="after")
    def _rounds_overlap(self) -> RocketChatSettings:
        every = self.reconcile_every
        if every is not None and self.reconcile_window < every:
            raise ValueError(
                f"reconcile_window ({self.reconcile_window:g} s) is shorter than reconcile_every "
                f"({every:g} s): what happens between two rounds would never be looked at"
            )
        return self

    @field_validator("webhook_events")
    @classmethod
    def _switches(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            WebhookSwitches.from_names(value)  # ValueError names the unknown one
        return value

    def switches(self) -> WebhookSwitches | None:
        """The configured switches (``None`` when left to Rocket.Chat's settings)."""
        if self.webhook_events is None:
            return None
        return WebhookSwitches.from_names(self.webhook_events, navigation=self.navigation_history)


class AlertBlock(_Block):
    """``[[alerts]]``: where to send alerts (omnihook.receiver.ops.alerts) and on what."""

    kind: Literal["rocketchat", "slack", "webhook"]
    url_env: str | None = None
    """slack and webhook: the environment variable holding the URL (URLs carry secrets)."""
    room_id: str | None = None
    """rocketchat: the room's id (#general's is GENERAL), through the [rocketchat] bot."""
    on: list[str] | None = None
    crm_failing_after: float = 600.0
    handling_delay: float = 300.0
    every: float = 3600.0

    @field_validator("crm_failing_after", "handling_delay", "every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else parse_duration(value)

    def rules(self) -> AlertRules:
        on = frozenset(self.on) if self.on is not None else frozenset(CONDITIONS)
        return AlertRules(on, self.crm_failing_after, self.handling_delay, self.every)


class BridgeConfig(_Block):
    receiver: ReceiverSettings = Field(default_factory=lambda: ReceiverSettings())
    rocketchat: RocketChatSettings | None = None
    crm: list[CrmBlock] = Field(default_factory=list)
    alerts: list[AlertBlock] = Field(default_factory=list)


def record_urls(config: BridgeConfig | None) -> dict[str, dict[str, str]]:
    """Each adapter's ``record_urls`` (adapter name → id name → URL template), for the console."""
    if config is None:
        return {}
    return {block.name or block.kind: dict(block.record_urls)
            for block in config.crm if block.record_urls}  # fmt: skip


def build_alert_routes(
    config: BridgeConfig, api: RocketChatApi | None, environ: Mapping[str, str] | None = None
) -> list[tuple[AlertTarget, AlertRules]]:
    """Each ``[[alerts]]`` block's target and rules, its URL read from the environment now (a
    missing variable stops the start, naming the key)."""
    env = os.environ if environ is None else environ
    routes = []
    for index, block in enumerate(config.alerts):
        where = f"alerts[{index}]"
        url = None
        if block.kind != "rocketchat":
            if not block.url_env:
                raise BridgeConfigError(f"{where}.url_env: a {block.kind} alert needs the "
                                        "environment variable holding its URL")  # fmt: skip
            url = env.get(block.url_env, "")
            if not url:
                raise BridgeConfigError(
                    f"{where}.url_env: environment variable {block.url_env} is not set"
                )
        elif not block.room_id or api is None:
            raise BridgeConfigError(f"{where}: a rocketchat alert needs room_id and a "
                                    "[rocketchat] block (url, the bot's id and token)")  # fmt: skip
        try:
            routes.append((target_from(block.kind, url=url, room_id=block.room_id, api=api),
                           block.rules()))  # fmt: skip
        except ValueError as exc:
            raise BridgeConfigError(f"{where}: {exc}") from None
    return routes


def load_bridge_config(path: Path) -> BridgeConfig:
    """Read and validate a bridge file (environment variables are checked by :func:`build_adapters`)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BridgeConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BridgeConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_bridge_config(data, source=str(path))


def parse_bridge_config(data: Mapping[str, Any], source: str = "bridge config") -> BridgeConfig:
    problems = _secret_problems(data)
    if problems:
        raise BridgeConfigError(f"{source}: " + "; ".join(problems))
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        raise BridgeConfigError(
            f"{source}: " + "; ".join(_explain(error, data) for error in exc.errors())
        ) from None
    names = [block.name or block.kind for block in config.crm]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise BridgeConfigError(
                f"{source}: crm[{index}].name: {name!r} is used twice; give each [[crm]] block its own name"
            )
    for index, block in enumerate(config.crm):
        for key in ("person_events", "transcript_events", "events"):
            for position, item in enumerate(getattr(block, key, None) or []):
                try:
                    EventType.lookup(item)
                except ValueError as exc:
                    raise BridgeConfigError(
                        f"{source}: crm[{index}].{key}[{position}]: {exc}"
                    ) from None
        if isinstance(block, SqlBlock) and config.receiver.store is None:
            raise BridgeConfigError(
                f"{source}: crm[{index}]: the sql CRM keeps its tables in the store; set receiver.store"
            )
    return config


ROCKETCHAT_URL_ENV = "OMNIHOOK_ROCKETCHAT_URL"


def build_rocketchat_api(
    config: BridgeConfig | None, environ: Mapping[str, str] | None = None
) -> RocketChatApi | None:
    """The REST client for replies: from the file's ``[rocketchat]`` block, else from
    ``OMNIHOOK_ROCKETCHAT_URL``, ``…_USER_ID`` and ``…_AUTH_TOKEN``; ``None`` when neither."""
    env = os.environ if environ is None else environ
    settings = config.rocketchat if config is not None else None
    if settings is None:
        if not env.get(ROCKETCHAT_URL_ENV):
            return None
        settings = RocketChatSettings(url=env[ROCKETCHAT_URL_ENV])
        where = "environment"
    else:
        where = "rocketchat"
    user_id, token = env.get(settings.user_id_env, ""), env.get(settings.auth_token_env, "")
    for key, variable, value in (("user_id_env", settings.user_id_env, user_id),
                                 ("auth_token_env", settings.auth_token_env, token)):  # fmt: skip
        if not value:
            raise BridgeConfigError(
                f"{where}.{key}: environment variable {variable} is not set (replies need it)"
            )
    try:
        return RocketChatApi(settings.url, user_id, token, timeout=settings.timeout)
    except ValueError as exc:
        raise BridgeConfigError(f"{where}.url: {exc}") from None


def build_adapters(
    config: BridgeConfig, store: Store | None, environ: Mapping[str, str] | None = None
) -> list[CrmAdapter]:
    """The configured adapters, with their secrets read from the environment now (so a missing
    variable stops the start, naming the key)."""
    env = os.environ if environ is None else environ
    links: LinkStore = store.crm_links if store is not None else MemoryLinks()
    adapters: list[CrmAdapter] = []
    for index, block in enumerate(config.crm):
        where = f"crm[{index}]"

        def secret(key: str, block: Any = block, where: str = where) -> str:
            variable = getattr(block, key)
            value = env.get(variable, "")
            if not value:
                raise BridgeConfigError(
                    f"{where}.{key}: environment variable {variable} is not set"
                )
            register_secret(value)  # every *_env value: never in a recorded error or a log line
            return value

        name = block.name or block.kind
        chat_url = block.chat_url or config.receiver.chat_url
        adapter: CrmAdapter
        if isinstance(block, HubSpotBlock):
            adapter = HubSpotAdapter(
                name, token=secret("token_env"), token_setting=f"{where}.token_env ({block.token_env})",
                base_url=block.base_url, api_prefix=block.api_prefix, owner_from_agent=block.owner_from_agent,
                timeout=block.timeout, **_record_options(block, links, chat_url),
            )  # fmt: skip
        elif isinstance(block, ZohoBlock):
            adapter = ZohoAdapter(
                name, client_id=secret("client_id_env"), client_secret=secret("client_secret_env"),
                refresh_token=secret("refresh_token_env"),
                settings={key: f"{where}.{key}_env ({getattr(block, key + '_env')})"
                          for key in ("client_id", "client_secret", "refresh_token")},
                accounts_url=block.accounts_url, api_version=block.api_version, module=block.module,
                duplicate_check_fields=tuple(block.duplicate_check_fields), lead_source=block.lead_source,
                timeout=block.timeout, **_record_options(block, links, chat_url),
            )  # fmt: skip
        elif isinstance(block, SalesforceBlock):
            adapter = SalesforceAdapter(
                name, domain_url=block.domain_url, client_id=secret("client_id_env"),
                client_secret=secret("client_secret_env"),
                settings={key: f"{where}.{key}_env ({getattr(block, key + '_env')})"
                          for key in ("client_id", "client_secret")},
                external_id_field=block.external_id_field, external_id_source=block.external_id_source,
                company=block.company, lead_source=block.lead_source, api_version=block.api_version,
                timeout=block.timeout, **_record_options(block, links, chat_url),
            )  # fmt: skip
        elif isinstance(block, HttpBlock):
            adapter = HttpForwardAdapter(
                name, url=block.url, token=secret("token_env") if block.token_env else None,
                token_header=block.token_header, fields=block.include,
                events=[EventType.lookup(e) for e in block.events] if block.events else None,
                timeout=block.timeout, attempts=block.attempts, delay=block.delay, links=links,
            )  # fmt: skip
        else:
            if store is None:
                raise BridgeConfigError(f"{where}: the sql CRM needs a store")
            adapter = SqlCrmAdapter(store, name)
        adapter.circuit_policy = block.circuit()
        adapters.append(adapter)
    return adapters


def _record_options(block: _RecordBlock, links: LinkStore, chat_url: str | None) -> dict[str, Any]:
    return {
        "links": links,
        "chat_url": chat_url,
        "field_map": block.field_map,
        "person_events": _events(block.person_events, DEFAULT_PERSON_EVENTS),
        "transcript_events": _events(block.transcript_events, DEFAULT_TRANSCRIPT_EVENTS),
    }


def _events(names: list[str] | None, default: frozenset[EventType]) -> frozenset[EventType]:
    return default if names is None else frozenset(EventType.lookup(name) for name in names)


def _secret_problems(data: Mapping[str, Any]) -> list[str]:
    problems = []
    for index, block in enumerate(data.get("crm") or []):
        if isinstance(block, Mapping):
            for key in block:
                if key in _SECRET_KEYS:
                    problems.append(
                        f"crm[{index}].{key}: secrets do not go in the file; put it in an environment "
                        f'variable and name it: {key}_env = "VARIABLE"'
                    )
    return problems


def _explain(error: Any, data: Mapping[str, Any]) -> str:
    loc = [
        part
        for part in error["loc"]
        if part not in ("hubspot", "zoho", "salesforce", "http", "sql")
    ]
    path = format_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1], data)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"{path}.kind: must be one of hubspot, zoho, salesforce, http, sql"
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _known_keys(loc: list[Any], data: Mapping[str, Any]) -> list[str]:
    if not loc:
        return list(BridgeConfig.model_fields)
    if loc[0] == "receiver":
        return list(ReceiverSettings.model_fields)
    if loc[0] == "rocketchat":
        return list(RocketChatSettings.model_fields)
    if loc[0] == "crm" and len(loc) > 1:
        blocks = data.get("crm") or []
        kind = (
            blocks[loc[1]].get("kind") if isinstance(loc[1], int) and loc[1] < len(blocks) else None
        )
        models: dict[str, type[BaseModel]] = {"hubspot": HubSpotBlock, "zoho": ZohoBlock,
                                              "salesforce": SalesforceBlock, "http": HttpBlock, "sql": SqlBlock}  # fmt: skip
        model = models.get(kind or "")
        return list(model.model_fields) if model else []
    return []


def build_reconcile_loop(
    config: BridgeConfig | None, api: RocketChatApi | None, store: Store | None
) -> ReconcileLoop | None:
    """Continuous reconcile, when the ``[rocketchat]`` block sets ``reconcile_every`` (it needs
    the REST client and a store); ``None`` otherwise."""
    settings = config.rocketchat if config is not None else None
    if settings is None or settings.reconcile_every is None:
        return None
    if api is None or store is None:
        raise BridgeConfigError(
            "rocketchat.reconcile_every: continuous reconcile needs the store (receiver.store) "
            "and the bot's credentials"
        )
    return ReconcileLoop(api, store, every=settings.reconcile_every,
                         window=settings.reconcile_window, lag=settings.reconcile_lag,
                         configured=settings.switches(),
                         not_before=settings.reconcile_not_before)  # fmt: skip
