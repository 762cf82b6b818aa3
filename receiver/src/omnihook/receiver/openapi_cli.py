"""``omnihook openapi``: the OpenAPI 3.1 description of Rocket.Chat's webhook, as omnihook answers it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .app import DEFAULT_PATH
from .openapi import openapi_document

__all__ = ["openapi"]


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write it to this file (default: standard output).")  # fmt: skip
@click.option("--path", default=DEFAULT_PATH, show_default=True, help="The webhook's path.")
def openapi(output: Path | None, path: str) -> None:
    """Write the OpenAPI 3.1 document of the webhook (the nine payload types from the contracts'
    JSON Schema, the token header, every status code), the trigger endpoint and /healthz."""
    if not path.startswith("/"):
        raise click.BadParameter(f"must start with '/', got {path!r}", param_hint="--path")
    text = json.dumps(openapi_document(path), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
