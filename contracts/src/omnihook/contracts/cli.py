"""The ``omnihook`` command: ``schema`` and ``validate`` here, the rest from installed parts.

Each part registers its subcommands as ``click`` commands in the ``omnihook.commands`` entry-point
group (the sender: ``send``, ``send-test``; the receiver: ``serve``), so installing only one part
gives only its commands. ``omnihook --version`` names every part with its version, or says that
it is not installed.
"""

from __future__ import annotations

import base64
import binascii
import json
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from .check import check_payload
from .event_type import EventType
from .events import UnknownEvent
from .schema import json_schema

__all__ = ["COMMAND_GROUP", "main", "root"]

COMMAND_GROUP = "omnihook.commands"

# The distributions of omnihook, all released with one version; any may be missing (a receiver
# needs no sender).
_PARTS = ("omnihook-contracts", "omnihook-store", "omnihook-sender", "omnihook-receiver")


class _PartsGroup(click.Group):
    """A group that adds the commands other installed parts declare as entry points."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(ep.name for ep in entry_points(group=COMMAND_GROUP))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for ep in entry_points(group=COMMAND_GROUP, name=cmd_name):
            loaded = ep.load()
            if not isinstance(loaded, click.Command):
                raise click.ClickException(f"entry point {ep.value} is not a click command")
            return loaded
        return None


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _version_report() -> str:
    """``omnihook VERSION``, then each part with its version or "not installed", then Python."""
    versions = {part: _installed_version(part) for part in _PARTS}
    width = max(map(len, _PARTS))
    lines = [f"omnihook {versions['omnihook-contracts'] or 'unknown'}"]
    lines += [f"  {part:<{width}}  {versions[part] or 'not installed'}" for part in _PARTS]
    python = f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
    lines.append(f"  {'Python':<{width}}  {python}")
    return "\n".join(lines)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_report())
        ctx.exit()


@click.group(cls=_PartsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show the version of each installed omnihook part and of Python, and exit.",
)
def root() -> None:
    """omnihook: Rocket.Chat Omnichannel webhooks, both ends of the wire."""


@root.command()
@click.argument("event_type", required=False)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the schema to this file instead of standard output.",
)
def schema(event_type: str | None, output: Path | None) -> None:
    """Print the JSON Schema of EVENT_TYPE, or of any event when none is given.

    EVENT_TYPE may be the wire type (LivechatSession), the admin page's name ("Chat Close") or
    the enum name (CHAT_CLOSE).
    """
    try:
        resolved = EventType.lookup(event_type) if event_type else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EVENT_TYPE") from None
    text = json.dumps(json_schema(resolved), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@root.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--quiet", "-q", is_flag=True, help="Print only the payloads that have problems.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Check payload FILES against the contracts and print each problem with its path.

    A file holds one JSON payload, a JSON array of payloads, or one payload per line (.jsonl, or
    any file whose first line is a JSON object). A capture of `omnihook inspect --capture` is read
    too: the body of each of its records is checked, named by its line. Use - for standard input.
    Exits 1 if any payload is invalid.
    """
    invalid = 0
    checked = 0
    for path in files:
        for where, document in _documents(path):
            checked += 1
            if not _report(where, document, quiet):
                invalid += 1
    summary = f"{checked} payload(s) checked, {invalid} invalid"
    click.echo(summary, err=True)
    if invalid:
        sys.exit(1)


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Each payload of a file with where it came from; text that is not JSON stays text."""
    name = "<stdin>" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield name, _Unreadable(str(exc))
        return
    if path.suffix == ".jsonl":
        yield from _lines(name, text)
        return
    try:
        document = json.loads(text)
    except ValueError:
        # Several JSON objects, one per line (a capture file, whatever its name), or not JSON.
        if isinstance(_json_or_none(_first_line(text)), dict):
            yield from _lines(name, text)
        else:
            yield name, text
        return
    except RecursionError:  # nested too deeply for Python: the contracts say so, by name
        yield name, text
        return
    if isinstance(document, list) and document and all(isinstance(item, dict) for item in document):
        for index, item in enumerate(document):
            yield f"{name}[{index}]", _payload(item)
    else:
        yield name, _payload(document)


def _lines(name: str, text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            body = _capture_body(_json_or_none(line))
            yield f"{name}:{number}", line if body is None else body


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _payload(document: Any) -> Any:
    body = _capture_body(document)
    return document if body is None else body


def _capture_body(record: Any) -> str | bytes | None:
    """The delivered body when ``record`` is a record of ``omnihook inspect --capture`` (an object
    with ``received_at`` and ``body``, or ``body_base64`` for a body that is not UTF-8; never a
    ``type``, which every payload has), else ``None``."""
    if not isinstance(record, dict) or "type" in record or "received_at" not in record:
        return None
    body = record.get("body")
    if isinstance(body, str):
        return body
    encoded = record.get("body_base64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return None
    return None


class _Unreadable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _report(where: str, document: Any, quiet: bool) -> bool:
    if isinstance(document, _Unreadable):
        click.echo(f"{where}: cannot read: {document.reason}")
        return False
    check = check_payload(
        document if isinstance(document, dict | str | bytes) else json.dumps(document)
    )
    event = check.event
    if event is None or not check.ok:
        error = check.error
        label = (
            {"not_json": "not JSON", "not_object": "not a JSON object"}.get(error.reason)
            if error
            else None
        )
        kind = error.event_type if error else event.type if event else None
        click.echo(f"{where}: {label or 'invalid ' + (kind or 'payload')}")
        for problem in check.problems:
            click.echo(f"  {problem}")
        return False
    if isinstance(event, UnknownEvent):
        click.echo(
            f"{where}: unknown event type {event.type!r} (a newer Rocket.Chat?): accepted, kept as is"
        )
        return True
    if not quiet or check.notes:
        room = f", room {event.room_id}" if event.room_id else ""
        test = ", the Send Test sample" if event.is_test else ""
        click.echo(f"{where}: ok ({event.type}{room}{test})")
        for note in check.notes:
            click.echo(f"  note: {note} (kept)")
    return True


def main() -> None:
    """Console entry point of ``omnihook``."""
    root(prog_name="omnihook")
