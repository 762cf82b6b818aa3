"""``omnihook alerts test``: send a sample alert to every ``[[alerts]]`` target of a bridge file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from .bridge import BridgeConfigError, build_alert_routes, build_rocketchat_api, load_bridge_config
from .ops.alerts import Alert

__all__ = ["alerts"]


@click.group()
def alerts() -> None:
    """Alerts to a Rocket.Chat room or a (Slack-compatible) webhook: see [[alerts]]."""


@alerts.command("test")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OMNIHOOK_CONFIG",
    required=True,
    help="The bridge file with the [[alerts]] blocks.",
)
def test(config_path: Path) -> None:
    """Send one sample alert to each target; exit 1 if any could not be reached."""
    try:
        config = load_bridge_config(config_path)
        api = build_rocketchat_api(config)
        routes = build_alert_routes(config, api)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not routes:
        raise click.ClickException(f"{config_path} has no [[alerts]] block")
    sample = Alert("test", "firing", "a test of omnihook's alerts (`omnihook alerts test`)",
                   time.time(), {"test": True})  # fmt: skip

    async def send() -> int:
        failed = 0
        try:
            for index, (target, _) in enumerate(routes):
                try:
                    await target.send(sample)
                except Exception as exc:  # each target's failure is reported, then the next
                    failed += 1
                    click.echo(f"alerts[{index}] ({target.name}): failed: {exc}", err=True)
                else:
                    click.echo(f"alerts[{index}] ({target.name}): sent")
        finally:
            if api is not None:
                await api.aclose()
        return failed

    if asyncio.run(send()):
        raise SystemExit(1)
