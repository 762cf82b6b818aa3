"""``omnihook send``, ``send-test``, ``simulate``, ``replay`` and ``trigger``: Rocket.Chat's side from a terminal."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omnihook.contracts import ContractError, parse_event, samples
from omnihook.contracts.tokens import DEFAULT_TOKEN_FILE, TOKEN_ENV, TokenSourceError, read_tokens

from .chat import VERSIONS, Version
from .policy import POLICY_NAMES, RetryPolicy
from .sender import SEND_TEST_TIMEOUT, Attempt, Delivery, Payload, Sender
from .simulate import Simulation, Step, play
from .trigger import call_trigger_service

__all__ = ["replay", "send", "send_test", "simulate", "trigger"]

F = TypeVar("F", bound=Callable[..., Any])

_token_file_option = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_TOKEN_FILE",
    help=f"File whose first token is sent. Default: the first token of ${TOKEN_ENV}, "
    f"else of ./{DEFAULT_TOKEN_FILE} (which `omnihook serve` writes).",
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def _webhook_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An http:// or https:// URL with a host; anything else is a usage error naming the fix."""
    text = value.strip()
    if not text:
        raise click.BadParameter("empty: e.g. http://127.0.0.1:8000/rocketchat")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in text):
        raise click.BadParameter(f"{text!r} holds spaces or control characters")
    scheme = _SCHEME.match(text)
    if scheme is None:
        if text.lower().startswith(("http:", "https:")):
            raise click.BadParameter(f"{text} is malformed: write http://HOST:PORT/PATH")
        if text.startswith("/"):
            raise click.BadParameter(
                f"{text} has no scheme and host: e.g. http://127.0.0.1:8000{text}"
            )
        raise click.BadParameter(f"{text} has no scheme: add http:// (http://{text})")
    name = scheme.group(1).lower()
    if name not in ("http", "https"):
        raise click.BadParameter(f"{text}: unsupported scheme {name}://, use http:// or https://")
    parts = urlsplit(text)
    if not parts.hostname:
        raise click.BadParameter(f"{text} has no host: e.g. http://127.0.0.1:8000/rocketchat")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise click.BadParameter(f"{text} has an invalid port (a number from 0 to 65535)") from None
    return name + text[len(name) :]  # Sender expects a lower-case scheme


_url_argument = click.argument("url", callback=_webhook_url)


def _delivery_options(default_policy: str) -> Callable[[F], F]:
    """``--timeout`` and ``--policy``, for the commands that deliver webhooks."""

    def decorate(func: F) -> F:
        func = click.option(
            "--policy",
            default=default_policy,
            show_default=True,
            type=click.Choice(POLICY_NAMES),
            help="Retry rules: current Rocket.Chat, the public docs, exponential backoff, or none.",
        )(func)
        return click.option(
            "--timeout",
            default=5.0,
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds per attempt (Rocket.Chat's Livechat_http_timeout).",
        )(func)

    return decorate


def _token(token_file: Path | None) -> str | None:
    """The token to send: ``--token-file``, else ``$OMNIHOOK_TOKEN``, else the token file
    ``omnihook serve`` generated in this directory; says on stderr when it is that file or none."""
    try:
        tokens = read_tokens(token_file)
        if not tokens and token_file is None and DEFAULT_TOKEN_FILE.exists():
            tokens = read_tokens(DEFAULT_TOKEN_FILE)
            click.echo(
                f"token: from ./{DEFAULT_TOKEN_FILE} (set ${TOKEN_ENV} or --token-file to send another)",
                err=True,
            )
    except TokenSourceError as exc:
        raise click.ClickException(str(exc)) from None
    if not tokens:
        click.echo(
            f"note: no token (${TOKEN_ENV}, --token-file or ./{DEFAULT_TOKEN_FILE}): sending without one",
            err=True,
        )
        return None
    return tokens[0]


def _print_attempt(attempt: Attempt) -> None:
    took = f"{attempt.elapsed * 1000:.0f} ms"
    if attempt.ok:
        line = f"attempt {attempt.number}: HTTP 200 in {took}"
        if attempt.response_text:
            line += f", answered {attempt.response_text[:200]}"
    else:
        line = f"attempt {attempt.number}: {attempt.error} ({took})"
    click.echo(line)
    if attempt.retry_in is not None:
        click.echo(f"  retrying in {attempt.retry_in:g} s (Ctrl-C to stop)")


@click.command()
@_url_argument
@click.option(
    "--file",
    "-f",
    "payload_file",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="JSON payload to send as is (- for standard input).",
)
@click.option(
    "--sample",
    "sample_name",
    type=click.Choice(samples.SAMPLE_NAMES),
    help="Send one of the built-in samples instead of a file.",
)
@_delivery_options(default_policy="rocketchat")
@_token_file_option
def send(
    url: str,
    payload_file: Path | None,
    sample_name: str | None,
    timeout: float,
    policy: str,
    token_file: Path | None,
) -> None:
    """Send one payload to URL as Rocket.Chat would, printing every attempt.

    The payload is sent byte for byte even when it breaks the contract (to test how a receiver
    copes), with a warning. Exits 1 unless the receiver answered 200.
    """
    if (payload_file is None) == (sample_name is None):
        raise click.UsageError("give exactly one of --file or --sample")
    payload: Payload
    if payload_file is not None:
        try:
            payload = (
                sys.stdin.buffer.read() if str(payload_file) == "-" else payload_file.read_bytes()
            )
        except OSError as exc:
            raise click.ClickException(f"cannot read {payload_file}: {exc.strerror}") from None
        try:
            parse_event(payload)
        except ContractError as exc:
            click.echo(
                f"warning: the payload breaks the contract, sending it anyway: {exc}",
                err=True,
            )
    else:
        assert sample_name is not None
        payload = samples.sample(sample_name)
    token = _token(token_file)
    delivery = asyncio.run(_send(url, token, timeout, RetryPolicy.named(policy), payload))
    _finish(delivery, success="delivered")


async def _send(
    url: str, token: str | None, timeout: float, policy: RetryPolicy, payload: Payload
) -> Delivery:
    async with Sender(
        url, token=token, timeout=timeout, policy=policy, on_attempt=_print_attempt
    ) as sender:
        return await sender.send(payload)


@click.command("send-test")
@_url_argument
@click.option(
    "--timeout",
    default=SEND_TEST_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
)
@_token_file_option
def send_test(url: str, timeout: float, token_file: Path | None) -> None:
    """Do what the admin page's Send Test button does: post the Send Test sample to URL once.

    Prints "It works" on HTTP 200, otherwise the status and body, and exits 1.
    """
    token = _token(token_file)
    delivery = asyncio.run(_send_test(url, token, timeout))
    if delivery.ok:
        click.echo("It works")
        return
    click.echo(f"error-invalid-webhook-response: {delivery.error}", err=True)
    sys.exit(1)


async def _send_test(url: str, token: str | None, timeout: float) -> Delivery:
    async with Sender(url, token=token) as sender:
        return await sender.send_test(timeout=timeout)


def _finish(delivery: Delivery, success: str) -> None:
    if delivery.ok:
        click.echo(success)
        return
    click.echo(f"failed: {delivery.error}", err=True)
    sys.exit(1)


@click.command()
@_url_argument
@click.option(
    "--chats",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many chats to play.",
)
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Chats in flight at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many events per second.",
)
@click.option("--seed", default=0, show_default=True, help="The same seed plays the same chats.")
@click.option("--version", "version", default="current", show_default=True, type=click.Choice(VERSIONS),
              help="Payload shapes of a Rocket.Chat generation.")  # fmt: skip
@_delivery_options(default_policy="rocketchat")
@_token_file_option
def simulate(
    url: str,
    chats: int,
    concurrency: int,
    rate: float | None,
    seed: int,
    version: Version,
    timeout: float,
    policy: str,
    token_file: Path | None,
) -> None:
    """Play realistic simulated chats at URL, as Rocket.Chat would send them.

    Shows a progress bar, then a table: events sent, 200s, retries, failures by status and
    latency percentiles. Exits 1 if any delivery failed.
    """
    played = Simulation(seed=seed, version=version).chats(chats)
    total = sum(len(chat.steps) for chat in played)
    token = _token(token_file)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
        TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("events", total=total, failed=0)
        failed = 0

        def advance(step: Step, delivery: Delivery) -> None:
            nonlocal failed
            failed += not delivery.ok
            progress.update(task, advance=1, failed=failed)

        report = asyncio.run(play(played, url, token=token, concurrency=concurrency, rate=rate, timeout=timeout,
                                  policy=RetryPolicy.named(policy), on_delivery=advance))  # fmt: skip
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (
        ("chats", f"{report.chats}"),
        ("events sent", f"{report.events}"),
        ("answered 200", f"{report.ok}"),
        ("retries", f"{report.retries}"),
        *((f"failed: {reason}", f"{count}") for reason, count in sorted(report.failures.items())),
        ("events/s", f"{report.per_second:,.0f}"),
        ("latency p50", f"{report.percentile(0.50):.1f} ms"),
        ("latency p95", f"{report.percentile(0.95):.1f} ms"),
        ("latency p99", f"{report.percentile(0.99):.1f} ms"),
    ):
        table.add_row(label, value)
    Console().print(table)
    if report.failures:
        sys.exit(1)


@click.command()
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_url_argument
@click.option("--fast", is_flag=True, help="As fast as possible, instead of the original pacing.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Replay this many times faster than it was captured.")  # fmt: skip
@_delivery_options(default_policy="no-retry")
@_token_file_option
def replay(
    capture: Path,
    url: str,
    fast: bool,
    speed: float,
    timeout: float,
    policy: str,
    token_file: Path | None,
) -> None:
    """Send the deliveries of a CAPTURE (from `omnihook inspect --capture`) to URL again, byte for
    byte, with their original pacing. The token comes from --token-file, $OMNIHOOK_TOKEN or
    ./omnihook.token (captures keep none). Exits 1 unless every delivery was answered 200."""
    records = _read_capture(capture)
    token = _token(token_file)
    delivered = asyncio.run(
        _replay(records, url, token, fast, speed, timeout, RetryPolicy.named(policy))
    )
    failed = sum(not d.ok for d in delivered)
    click.echo(f"{len(delivered)} delivery(ies) replayed, {failed} not answered 200", err=True)
    if failed:
        sys.exit(1)


def _read_capture(capture: Path) -> list[tuple[datetime, bytes]]:
    try:
        text = capture.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {capture}: {exc}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            body = (base64.b64decode(record["body_base64"]) if "body_base64" in record
                    else str(record["body"]).encode("utf-8"))  # fmt: skip
            records.append((datetime.fromisoformat(record["received_at"]), body))
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(
                f"{capture}:{number}: not a capture record ({exc})"
            ) from None
    if not records:
        raise click.ClickException(f"{capture} holds no delivery: nothing to replay")
    return records


async def _replay(records: list[tuple[datetime, bytes]], url: str, token: str | None, fast: bool, speed: float,
                  timeout: float, policy: RetryPolicy) -> list[Delivery]:  # fmt: skip
    delivered = []
    async with Sender(url, token=token, timeout=timeout, policy=policy) as sender:
        started = time.monotonic()
        first = records[0][0] if records else None
        for received_at, body in records:
            if not fast and first is not None:
                due = (received_at - first).total_seconds() / speed
                await asyncio.sleep(max(0.0, due - (time.monotonic() - started)))
            delivery = await sender.send(body)
            kind = _kind(body)
            click.echo(
                f"{received_at:%H:%M:%S} {kind}: " + ("200" if delivery.ok else f"{delivery.error}")
            )
            delivered.append(delivery)
    return delivered


def _kind(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON"
    kind = document.get("type") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else "no type"


@click.command()
@_url_argument
@click.option(
    "--visitor-token", required=True, help="The visitor's token, as Rocket.Chat sends it."
)
@click.option(
    "--metadata",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    help="Trigger metadata (repeatable).",
)
@click.option(
    "--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option("--fallback", help="The trigger's fallback message.")
@_token_file_option
def trigger(url: str, visitor_token: str, metadata: tuple[str, ...], timeout: float, fallback: str | None,
            token_file: Path | None) -> None:  # fmt: skip
    """Call a Livechat trigger's external service at URL as Rocket.Chat does and print what the
    visitor would see (or the fallback, and why). Exits 1 when the fallback is used."""
    pairs = {}
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--metadata")
        pairs[key] = value
    answer = asyncio.run(call_trigger_service(url, secret=_token(token_file), visitor_token=visitor_token,
                                              metadata=pairs, timeout=timeout, fallback=fallback))  # fmt: skip
    for message in answer.messages:
        click.echo(message)
    if answer.fallback_used:
        click.echo(f"fallback shown: {answer.reason}", err=True)
        sys.exit(1)
