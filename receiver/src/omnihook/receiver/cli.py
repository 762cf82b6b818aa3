"""``omnihook serve``, ``worker`` and ``inspect``: receive, store, handle and inspect Rocket.Chat webhooks."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from click.core import ParameterSource

from omnihook.contracts.tokens import DEFAULT_TOKEN_FILE, TOKEN_ENV, TokenSourceError, read_tokens
from omnihook.store import Store, StoreError
from omnihook.store.cli import store_option

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, create_app
from .bridge import (
    BridgeConfig,
    BridgeConfigError,
    build_adapters,
    build_alert_routes,
    build_reconcile_loop,
    build_rocketchat_api,
    load_bridge_config,
    record_urls,
)
from .console import PASSWORD_ENV, ConsoleAuth, create_console, read_password
from .crm import SqlCrmAdapter
from .event_log import logging_router
from .http import HttpLimits, run_server
from .inspector import create_inspector
from .ops.alerts import AlertLoop
from .ops.logs import LOG_FORMATS, configure_logging
from .ops.metrics import serve_metrics
from .ops.tracing import configure_tracing
from .reconcile import ReconcileLoop
from .rest import RocketChatApi
from .router import Router
from .tuning import tune_process
from .worker import DEFAULT_CONCURRENCY, HandlingPolicy, Worker

__all__ = ["DEFAULT_TOKEN_FILE", "inspect", "load_app_target", "resolve_tokens", "serve", "worker"]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("omnihook.receiver")


class _Tokens:
    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens = tokens
        self.source = source


def resolve_tokens(
    token_file: Path | None, insecure_no_token: bool, default_file: Path, token_env: str = TOKEN_ENV
) -> _Tokens:
    """Tokens from ``--token-file``, else the ``token_env`` variable (``OMNIHOOK_TOKEN``), else
    the default token file, created with a new random token (printed once) when missing."""
    try:
        if token_file is not None:
            return _Tokens(read_tokens(token_file), f"token file {token_file}")
        from_env = read_tokens(token_env=token_env)
        if from_env:
            return _Tokens(from_env, token_env)
        if insecure_no_token:
            return _Tokens([], "none (--insecure-no-token)")
        if default_file.exists():
            return _Tokens(read_tokens(default_file), f"token file {default_file}")
    except TokenSourceError as exc:
        raise click.ClickException(str(exc)) from None
    token = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(default_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise click.ClickException(
            f"no token configured and cannot create {default_file}: {exc.strerror}. "
            f"Set {TOKEN_ENV}, pass --token-file, or --insecure-no-token."
        ) from None
    _announce_generated(token, default_file)
    return _Tokens([token], f"token file {default_file} (generated now)")


def _announce_generated(token: str, path: Path) -> None:
    click.echo(
        "\n".join(
            [
                "",
                f"No token was configured, so omnihook generated one and saved it in {path}",
                "(readable by you only; later starts reuse it). Paste it into Rocket.Chat:",
                "  Administration > Omnichannel > Webhooks > Secret Token:",
                "",
                f"    {token}",
                "",
                f"It is shown this once. To choose your own, set {TOKEN_ENV} or use --token-file.",
                "",
            ]
        )
    )


def load_app_target(spec: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted) from the current directory."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"expected module:attribute, got {spec!r}", param_hint="--app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="--app"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise click.BadParameter(
                f"{module_name!r} has no attribute {attribute!r}", param_hint="--app"
            ) from None
    return target


def _handling_options(func: F) -> F:
    defaults = HandlingPolicy()
    options = [
        click.option(
            "--concurrency",
            default=DEFAULT_CONCURRENCY,
            show_default=True,
            type=click.IntRange(min=1),
            help="Events handled at once (of different rooms).",
        ),
        click.option(
            "--max-attempts",
            default=defaults.attempts,
            show_default=True,
            type=click.IntRange(min=1),
            help="Handling attempts before an event is dead-lettered.",
        ),
        click.option(
            "--max-age",
            default=defaults.max_age,
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds after which a failing event is dead-lettered.",
        ),
        click.option(
            "--handler-timeout",
            default=defaults.handler_timeout,
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds each handler gets per attempt.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _policy(max_attempts: int, max_age: float, handler_timeout: float) -> HandlingPolicy:
    return HandlingPolicy(attempts=max_attempts, max_age=max_age, handler_timeout=handler_timeout)


def _router_from(app_spec: str) -> Router:
    target = load_app_target(app_spec)
    if isinstance(target, Router):
        return target
    state_router = getattr(getattr(target, "state", None), "router", None)
    if isinstance(state_router, Router):  # an app made by create_app
        return state_router
    raise click.BadParameter(
        f"{app_spec} is a {type(target).__name__}; a worker needs a Router (or an app made by create_app)",
        param_hint="--app",
    )


def _metrics_port_options(func: F) -> F:
    """``--metrics-port`` / ``--metrics-host`` / ``--metrics-token-env`` (serve and worker)."""
    options = [
        click.option(
            "--metrics-port",
            type=click.IntRange(0, 65535),
            default=None,
            envvar="OMNIHOOK_METRICS_PORT",
            help="Serve Prometheus metrics on this port of their own (the worker's only way).",
        ),
        click.option(
            "--metrics-host",
            default="127.0.0.1",
            show_default=True,
            help="Interface of --metrics-port; it takes no token, keep it private.",
        ),
        click.option(
            "--metrics-token-env",
            default="OMNIHOOK_METRICS_TOKEN",
            show_default=True,
            help="Environment variable whose value /metrics on the webhook's port requires as "
            "'Authorization: Bearer …' (unset or empty: no token).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _console_auth(password_file: Path | None) -> ConsoleAuth:
    try:
        return ConsoleAuth(read_password(password_file))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _metrics_token(env: str) -> str | None:
    return os.environ.get(env) or None


_log_level_option = click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)

_log_format_option = click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(LOG_FORMATS),
    help="text for people; json for log collectors (one object per line).",
)


_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_CONFIG",
    help="A bridge file (receiver settings, store, [[crm]] adapters); flags given override it.",
)


class _Settings:
    """The values to run with: a flag given on the command line (or by its environment variable)
    wins over the bridge file, which wins over the flag's default."""

    def __init__(self, ctx: click.Context, config: BridgeConfig | None) -> None:
        self._ctx = ctx
        self._file = config.receiver if config is not None else None

    def __call__(self, parameter: str, file_key: str | None = None) -> Any:
        value = self._ctx.params[parameter]
        source = self._ctx.get_parameter_source(parameter)
        if self._file is None or source not in (ParameterSource.DEFAULT, None):
            return value
        return getattr(self._file, file_key or parameter)


def _load_config(config_path: Path | None) -> BridgeConfig | None:
    if config_path is None:
        return None
    try:
        return load_bridge_config(config_path)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _reconcile_loop(
    config: BridgeConfig | None, api: RocketChatApi | None, store: Store | None
) -> ReconcileLoop | None:
    try:
        return build_reconcile_loop(config, api, store)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _alert_loop(
    config: BridgeConfig | None, api: RocketChatApi | None, store: Store | None
) -> AlertLoop | None:
    """The [[alerts]] of the bridge file, checked in this process (one process of those sharing
    the store sends them)."""
    if config is None or not config.alerts:
        return None
    if store is None:
        raise click.ClickException("[[alerts]] read the store: they need one (store = false)")
    try:
        routes = build_alert_routes(config, api)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    logger.info("alerts: %s", ", ".join(f"{target.name}" for target, _ in routes))
    return AlertLoop(store, routes=routes)


def _rocketchat_api(config: BridgeConfig | None) -> RocketChatApi | None:
    try:
        return build_rocketchat_api(config)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _assemble(
    app_router: Router | None, config: BridgeConfig | None, store: Store | None
) -> Router:
    """The router to run: the user's (or one that logs every event), then the CRM adapters of the
    bridge file; without a file and with a store, the SQL CRM keeps a customer record."""
    router = Router()
    router.include(app_router if app_router is not None else logging_router())
    if config is not None:
        try:
            adapters = build_adapters(config, store)
        except BridgeConfigError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        adapters = [SqlCrmAdapter(store)] if store is not None and app_router is None else []
    for adapter in adapters:
        adapter.register(router)
        logger.info("CRM adapter %s (%s) on %s", adapter.name, type(adapter).__name__,
                    ", ".join(sorted(e.value for e in adapter.events)))  # fmt: skip
    if store is not None:
        router.add_cleanup(store.close)
    return router


def _http_edge_options(func: F) -> F:
    """The HTTP edge's flags; the command receives them as one ``limits: HttpLimits``."""
    defaults = HttpLimits()
    seconds = click.FloatRange(min=0, min_open=True)
    options = [
        click.option("--max-header-bytes", default=defaults.max_header_bytes, show_default=True,
                     type=click.IntRange(min=1),
                     help="Request line and headers, in all; more is refused with 431."),
        click.option("--header-timeout", default=defaults.header_timeout, show_default=True, type=seconds,
                     help="Seconds for a request's headers to arrive; slower gets 408."),
        click.option("--body-timeout", default=defaults.body_timeout, show_default=True, type=seconds,
                     help="Seconds for a request's body to arrive after its headers; slower gets 408."),
        click.option("--body-gap-timeout", default=defaults.body_gap_timeout, show_default=True,
                     type=seconds, help="Longest silence within a body, in seconds; longer gets 408."),
        click.option("--keep-alive-timeout", default=defaults.keep_alive_timeout, show_default=True,
                     type=seconds, help="Seconds an idle keep-alive connection stays open."),
        click.option("--backlog", default=defaults.backlog, show_default=True, type=click.IntRange(min=1),
                     help="Connections the system queues before they are accepted."),
        click.option("--send-timeout", default=defaults.send_timeout, show_default=True, type=seconds,
                     help="Seconds a client may leave its answer unread before it is cut off."),
    ]  # fmt: skip
    names = ("max_header_bytes", "header_timeout", "body_timeout", "body_gap_timeout",
             "keep_alive_timeout", "backlog", "send_timeout")  # fmt: skip

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        limits = HttpLimits(**{name: kwargs.pop(name) for name in names})
        return func(*args, limits=limits, **kwargs)

    for option in reversed(options):
        command = option(command)
    return cast(F, command)


@click.command()
@click.option(
    "--app",
    "app_spec",
    metavar="MODULE:ATTR",
    help="Your Router or ASGI app (e.g. myhooks:router). Default: log every event.",
)
@_config_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="OMNIHOOK_HOST",
    help="Interface to listen on (0.0.0.0 for every interface).",
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), envvar="OMNIHOOK_PORT"
)
@click.option(
    "--path",
    default=DEFAULT_PATH,
    show_default=True,
    envvar="OMNIHOOK_PATH",
    help="The webhook's path; Rocket.Chat's Webhook URL ends with it.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_TOKEN_FILE",
    help=f"File with the accepted token(s), one per line. Default: ${TOKEN_ENV} (comma-separated), else {DEFAULT_TOKEN_FILE}.",
)
@click.option(
    "--insecure-no-token", is_flag=True, help="Accept requests without checking any token."
)
@store_option
@click.option(
    "--no-store", is_flag=True, help="Handle events before answering, keep nothing (inline mode)."
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Only accept and store; leave handling to `omnihook worker` processes.",
)
@_handling_options
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
)
@_log_level_option
@_log_format_option
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every HTTP request too.",
)
@_http_edge_options
@click.option(
    "--metrics-path",
    default="/metrics",
    show_default=True,
    envvar="OMNIHOOK_METRICS_PATH",
    help="Where Prometheus metrics are served on the webhook's port.",
)
@click.option("--no-metrics", is_flag=True, help="Serve no metrics at all.")
@_metrics_port_options
@click.option(
    "--console",
    "with_console",
    is_flag=True,
    help=f"Serve the web console at /console (its password: ${PASSWORD_ENV} or --console-password-file).",
)
@click.option(
    "--console-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_CONSOLE_PASSWORD_FILE",
    help="File whose first line is the console's password.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    app_spec: str | None,
    config_path: Path | None,
    host: str,
    port: int,
    path: str,
    token_file: Path | None,
    insecure_no_token: bool,
    store_url: str,
    no_store: bool,
    no_worker: bool,
    concurrency: int,
    max_attempts: int,
    max_age: float,
    handler_timeout: float,
    max_body_bytes: int,
    log_level: str,
    log_format: str,
    access_log: bool,
    limits: HttpLimits,
    metrics_path: str,
    no_metrics: bool,
    metrics_port: int | None,
    metrics_host: str,
    metrics_token_env: str,
    with_console: bool,
    console_password_file: Path | None,
) -> None:
    """Receive Rocket.Chat's webhooks: check the token, store, answer, handle.

    Each delivery is committed to the store before Rocket.Chat gets its 200; a worker in this
    process runs the handlers (more workers: `omnihook worker`). With no app and no bridge file,
    every event is logged and kept as a customer record in the store (`omnihook contacts list`).
    Point Rocket.Chat's Webhook URL (Omnichannel > Webhooks) at http://HOST:PORT/PATH.
    """
    configure_logging(log_level, log_format)
    configure_tracing()  # only when the OTEL_* variables ask for traces
    config = _load_config(config_path)
    pick = _Settings(ctx, config)
    host, port, path = pick("host"), pick("port"), pick("path")
    chosen_store: str | None = pick("store_url", "store")
    if no_store:
        chosen_store = None
    target = load_app_target(app_spec) if app_spec else None
    if target is not None and not isinstance(target, Router):
        if not callable(target):
            raise click.BadParameter(
                f"{app_spec} is a {type(target).__name__}; expected a Router or an ASGI app",
                param_hint="--app",
            )
        logger.info(
            "serving %s as is: token checks, paths and storage are that app's own", app_spec
        )
        run_server(target, host, port, limits, log_level=log_level, access_log=access_log)
        return
    token_env = config.receiver.token_env if config is not None else TOKEN_ENV
    config_token_file = config.receiver.token_file if config is not None else None
    tokens = resolve_tokens(token_file or (Path(config_token_file) if config_token_file else None),
                            insecure_no_token, DEFAULT_TOKEN_FILE, token_env)  # fmt: skip
    store = Store(chosen_store) if chosen_store else None
    router = _assemble(target, config, store)
    rocketchat = _rocketchat_api(config)
    reconciling = _reconcile_loop(config, rocketchat, store)
    background = [reconciling.run] if reconciling is not None else []
    alerting = _alert_loop(config, rocketchat, store)
    if alerting is not None:
        background.append(alerting.run)
    on_own_port = not no_metrics and metrics_port is not None
    if on_own_port:
        assert metrics_port is not None
        background.append(partial(serve_metrics, store, metrics_host, metrics_port))
    asgi_app = create_app(
        router,
        tokens.tokens,
        path=path,
        max_body_bytes=pick("max_body_bytes"),
        insecure_no_token=insecure_no_token,
        store=store,
        run_worker=not no_worker,
        handling=_policy(pick("max_attempts"), pick("max_age"), pick("handler_timeout")),
        worker_concurrency=pick("concurrency"),
        rocketchat=rocketchat,
        background=background,
        metrics_path=None if no_metrics or on_own_port else metrics_path,
        metrics_token=_metrics_token(metrics_token_env),
    )
    if rocketchat is not None:
        logger.info("replies go through %s", rocketchat.url)
    if not tokens.tokens:
        logger.warning("accepting requests WITHOUT a token check (--insecure-no-token)")
    else:
        logger.info("accepting %d token(s) from %s", len(tokens.tokens), tokens.source)
    tune_process()
    if store is None:
        logger.info("no store: handlers run before each answer, nothing is kept")
    else:
        where = "in this process" if not no_worker else "in `omnihook worker` processes"
        logger.info("store: %s; handling %s", store.config.display, where)
    logger.info("webhook URL: http://%s:%d%s", host, port, path)
    if not no_metrics and not on_own_port:
        logger.info("metrics: http://%s:%d%s", host, port, metrics_path)
    if with_console:
        if store is None:
            raise click.UsageError("--console shows what the store holds: it needs one")
        console_auth = _console_auth(console_password_file)
        if console_auth.uses(tokens.tokens):
            raise click.UsageError("the console's password is a webhook token: give it its own")
        asgi_app.mount(
            "/console", create_console(store, console_auth, record_urls=record_urls(config))
        )
        logger.info("console: http://%s:%d/console/", host, port)
    run_server(asgi_app, host, port, limits, log_level=log_level, access_log=access_log)


@click.command("worker")
@click.option(
    "--app",
    "app_spec",
    metavar="MODULE:ATTR",
    help="Your Router (e.g. myhooks:router). Default: log every event.",
)
@_config_option
@store_option
@_handling_options
@click.option(
    "--grace",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to finish events in hand when stopped.",
)
@click.option(
    "--lease",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds after which another worker takes over an event this one holds (if it died).",
)
@_log_level_option
@_log_format_option
@_metrics_port_options
@click.pass_context
def worker(
    ctx: click.Context,
    app_spec: str | None,
    config_path: Path | None,
    store_url: str,
    concurrency: int,
    max_attempts: int,
    max_age: float,
    handler_timeout: float,
    grace: float,
    lease: float,
    log_level: str,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    metrics_token_env: str,
) -> None:
    """Handle stored events with your handlers, beside `omnihook serve`.

    Run as many as you like, on this machine or (with a PostgreSQL store) on others: each event
    is handled by one worker, each room's events one at a time in arrival order. Give it the same
    --app and --config as the server. Stops on Ctrl-C or SIGTERM, finishing or handing back the
    events it holds.
    """
    configure_logging(log_level, log_format)
    configure_tracing()  # only when the OTEL_* variables ask for traces
    tune_process()
    config = _load_config(config_path)
    pick = _Settings(ctx, config)
    store_url = pick("store_url", "store")
    if store_url is None:
        raise click.UsageError("a worker needs a store; the bridge file sets store = false")
    store = Store(store_url)
    router = _assemble(_router_from(app_spec) if app_spec else None, config, store)
    rocketchat = _rocketchat_api(config)
    if rocketchat is not None:
        router.add_cleanup(rocketchat.aclose)
    policy = _policy(pick("max_attempts"), pick("max_age"), pick("handler_timeout"))
    reconciling = _reconcile_loop(config, rocketchat, store)
    jobs = [reconciling.run] if reconciling is not None else []
    alerting = _alert_loop(config, rocketchat, store)
    if alerting is not None:
        jobs.append(alerting.run)
    if metrics_port is not None:
        jobs.append(partial(serve_metrics, store, metrics_host, metrics_port))
    asyncio.run(_run_worker(store, router, policy, pick("concurrency"), grace, lease, rocketchat,
                            jobs))  # fmt: skip


async def _run_worker(
    store: Store,
    router: Router,
    policy: HandlingPolicy,
    concurrency: int,
    grace: float,
    lease: float,
    rocketchat: RocketChatApi | None = None,
    background: Iterable[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = Worker(
        store, router, policy=policy, concurrency=concurrency, lease=lease, rocketchat=rocketchat
    )
    logger.info("worker %s on store %s", running.name, store.config.display)
    try:
        await store.connect()
    except StoreError as exc:
        logger.error("store unavailable at start, will keep trying: %s", exc)
    task = asyncio.create_task(running.run())
    jobs = [asyncio.create_task(job(stop)) for job in background]
    try:
        await stop.wait()
    finally:
        logger.info("stopping: finishing the events in hand (up to %g s)", grace)
        await asyncio.gather(*jobs, return_exceptions=True)
        await running.stop(grace)
        await task
        await router.aclose()


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for every interface).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--path",
    default=DEFAULT_PATH,
    show_default=True,
    help="The path Rocket.Chat's Webhook URL ends with.",
)
@click.option("--capture", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Append every delivery to this JSON-lines file (for `omnihook replay`).")  # fmt: skip
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), envvar="OMNIHOOK_TOKEN_FILE",
              help=f"Token(s) to check. Default: ${TOKEN_ENV}; with none, any token is accepted.")  # fmt: skip
@_http_edge_options
def inspect(host: str, port: int, path: str, capture: Path | None, token_file: Path | None,
            limits: HttpLimits) -> None:  # fmt: skip
    """Point a real Rocket.Chat at this and see each payload checked against the contracts.

    One line per event (type, room, visitor, verdict), then exactly what drifts where: unknown
    types, unknown or missing fields, wrong forms, dates not in Rocket.Chat's form. It answers like
    a well-behaved receiver and handles nothing.
    """
    try:
        tokens = read_tokens(token_file)
    except TokenSourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"inspecting http://{host}:{port}{path}: set it as Rocket.Chat's Webhook URL", err=True
    )
    click.echo(
        f"token: {'checked (' + str(len(tokens)) + ' accepted)' if tokens else 'not checked (none configured)'}",
        err=True,
    )
    if capture is not None:
        click.echo(f"capturing to {capture}", err=True)
    app = create_inspector(tokens, path=path, capture=capture, echo=click.echo)
    run_server(app, host, port, limits, log_level="warning", access_log=False)
