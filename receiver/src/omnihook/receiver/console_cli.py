"""``omnihook console``: the web console alone, against a store (the PostgreSQL set-up, or a
look at a SQLite store without receiving)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import click
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from omnihook.store import Store
from omnihook.store.cli import store_option

from .bridge import record_urls
from .cli import _config_option, _console_auth, _load_config, _log_level_option
from .console import create_console
from .http import HttpLimits, run_server
from .ops.logs import configure_logging

__all__ = ["console"]


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--console-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_CONSOLE_PASSWORD_FILE",
    help="File whose first line is the console's password (else $OMNIHOOK_CONSOLE_PASSWORD).",
)
@_config_option
@_log_level_option
def console(
    store_url: str,
    host: str,
    port: int,
    console_password_file: Path | None,
    config_path: Path | None,
    log_level: str,
) -> None:
    """Run the web console at http://HOST:PORT/console/ on a store: chats, events, failures,
    replay, the outbox, live events. Sign in with the console password (never the webhook's
    token). With --config, a chat's page links to the CRM records (the record_urls of its
    [[crm]] blocks)."""
    configure_logging(log_level)
    auth = _console_auth(console_password_file)
    urls = record_urls(_load_config(config_path))
    store = Store(store_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.close()

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/", 307)

    app = Starlette(routes=[Route("/", home), Mount("/console", create_console(store, auth, record_urls=urls))],
                    lifespan=lifespan)  # fmt: skip
    click.echo(f"console: http://{host}:{port}/console/ on {store.config.display}", err=True)
    run_server(app, host, port, HttpLimits(), log_level=log_level, access_log=False)
