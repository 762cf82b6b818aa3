"""``omnihook serve``: run a receiver (yours, or one that logs every event) under uvicorn."""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn

from omnihook.contracts.tokens import TOKEN_ENV, TokenSourceError, read_tokens

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, create_app
from .console import logging_router
from .router import Router

__all__ = ["DEFAULT_TOKEN_FILE", "load_app_target", "resolve_tokens", "serve"]

logger = logging.getLogger("omnihook.receiver")

DEFAULT_TOKEN_FILE = Path("omnihook.token")
"""Where ``serve`` keeps the token it generates when none is configured."""


class _Tokens:
    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens = tokens
        self.source = source


def resolve_tokens(token_file: Path | None, insecure_no_token: bool, default_file: Path) -> _Tokens:
    """Tokens from ``--token-file``, else ``OMNIHOOK_TOKEN``, else the default token file,
    which is created with a new random token (printed once) when it does not exist yet."""
    try:
        if token_file is not None:
            return _Tokens(read_tokens(token_file), f"token file {token_file}")
        from_env = read_tokens()
        if from_env:
            return _Tokens(from_env, TOKEN_ENV)
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


@click.command()
@click.option(
    "--app",
    "app_spec",
    metavar="MODULE:ATTR",
    help="Your Router or ASGI app (e.g. myhooks:router). Default: log every event.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="OMNIHOOK_HOST",
    help="Interface to listen on (0.0.0.0 for every interface).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="OMNIHOOK_PORT",
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
    "--insecure-no-token",
    is_flag=True,
    help="Accept requests without checking any token.",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every HTTP request too.",
)
def serve(
    app_spec: str | None,
    host: str,
    port: int,
    path: str,
    token_file: Path | None,
    insecure_no_token: bool,
    max_body_bytes: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Receive Rocket.Chat's webhooks: check the token, parse, run the handlers.

    Point Rocket.Chat's Webhook URL (Omnichannel > Webhooks) at http://HOST:PORT/PATH.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    target = load_app_target(app_spec) if app_spec else logging_router()
    if isinstance(target, Router):
        tokens = resolve_tokens(token_file, insecure_no_token, DEFAULT_TOKEN_FILE)
        asgi_app: Any = create_app(
            target,
            tokens.tokens,
            path=path,
            max_body_bytes=max_body_bytes,
            insecure_no_token=insecure_no_token,
        )
        if not tokens.tokens:
            logger.warning("accepting requests WITHOUT a token check (--insecure-no-token)")
        else:
            logger.info("accepting %d token(s) from %s", len(tokens.tokens), tokens.source)
        logger.info("webhook URL: http://%s:%d%s", host, port, path)
    elif callable(target):
        asgi_app = target
        logger.info("serving %s as is: token checks and paths are that app's own", app_spec)
    else:
        raise click.BadParameter(
            f"{app_spec} is a {type(target).__name__}; expected a Router or an ASGI app",
            param_hint="--app",
        )
    uvicorn.run(
        asgi_app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        log_config=None,
    )
