"""``omnihook reconcile``: what Rocket.Chat sent that the store never received, and rebuilding it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console

from omnihook.store import Store
from omnihook.store.cli import print_table, run_with_store, store_option

from .cli import _config_option, _load_config, _rocketchat_api
from .reconcile import (
    Reconciler,
    ReconcileReport,
    read_build_settings,
    read_switches,
    window,
)
from .rest import RocketChatError

__all__ = ["reconcile"]


@click.command()
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Start of the window: a duration ago (24h, 90m, 7d) or an ISO date with a time zone.",
)
@click.option(
    "--until",
    default="5m",
    show_default=True,
    help="End of the window, in the same forms; the default leaves out deliveries still in "
    "flight (Rocket.Chat retries for about 80 s).",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Rebuild every missing event and store it for the handlers (a worker runs them).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per gap.")
@_config_option
@store_option
def reconcile(
    since: str,
    until: str,
    apply: bool,
    as_json: bool,
    config_path: Path | None,
    store_url: str,
) -> None:
    """Compare what Rocket.Chat knows with what this store received, and list the gaps.

    Reads Rocket.Chat's Omnichannel rooms of the window (and those open now), their messages,
    visitors and agents, through its REST API as a bot (the [rocketchat] block of --config, or
    OMNIHOOK_ROCKETCHAT_URL, _USER_ID and _AUTH_TOKEN). Without --apply nothing changes. With it,
    each missing event is rebuilt as Rocket.Chat built it and stored as if delivered, marked as
    rebuilt (`omnihook events list --source reconcile`).

    Exits 1 when a room was left out (Rocket.Chat failed reading it, or it could not be
    rebuilt; each is named with the reason): the run is incomplete, run it again later.
    """
    try:
        start, end = window(since, until, time.time())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    config = _load_config(config_path)
    api = _rocketchat_api(config)
    if api is None:
        raise click.UsageError(
            "reconcile reads Rocket.Chat's REST API as a bot: give --config a bridge file with "
            "a [rocketchat] block, or set OMNIHOOK_ROCKETCHAT_URL, OMNIHOOK_ROCKETCHAT_USER_ID "
            "and OMNIHOOK_ROCKETCHAT_AUTH_TOKEN"
        )
    configured = config.rocketchat.switches() if config and config.rocketchat else None

    async def work(store: Store) -> ReconcileReport:
        try:
            switches = await read_switches(api, configured)
            settings = await read_build_settings(api, switches)
            reconciler = Reconciler(api, store, switches, settings=settings)
            report = await reconciler.find(start, end)
            if apply:
                report = await reconciler.apply(report)
            if not as_json:
                click.echo(f"webhook switches on: {switches.describe()}", err=True)
            return report
        except RocketChatError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await api.aclose()

    report = run_with_store(store_url, work)
    if as_json:
        for room_id, why in report.skipped_rooms:
            click.echo(f"room {room_id} left out: {why}", err=True)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        applied = {(gap.room_id, gap.at, gap.what) for gap in report.applied}
        for gap in report.gaps:
            click.echo(json.dumps({
                "room_id": gap.room_id, "type": gap.type, "what": gap.what, "at": gap.at,
                "rebuildable": gap.event is not None, "why": gap.why,
                "applied": (gap.room_id, gap.at, gap.what) in applied,
            }))  # fmt: skip
    else:
        _print(report, apply)
    if report.skipped_rooms:  # a script or cron job must see that the run is incomplete
        raise SystemExit(1)


def _print(report: ReconcileReport, applied: bool) -> None:
    console = Console()
    for room_id, why in report.skipped_rooms:
        console.print(f"room {room_id} left out: {why}", style="yellow")
    for note in report.notes:
        console.print(f"note: {note}", style="yellow")
    if report.gaps:
        print_table(
            console,
            ("room", "what is missing", "since (UTC)", "rebuilt" if applied else "can rebuild"),
            (
                (gap.room_id, gap.what, gap.at.replace("T", " ")[:19],
                 ("yes" if gap.event is not None else f"no: {gap.why}"))
                for gap in report.gaps
            ),
        )  # fmt: skip
    cannot = len(report.gaps) - len(report.rebuildable)
    summary = (
        f"{report.rooms} room(s), {report.expected} event(s) Rocket.Chat sent in the window, "
        f"{len(report.gaps)} missing" + (f" ({cannot} cannot be rebuilt)" if cannot else "")
    )
    console.print(summary)
    if applied:
        console.print(
            f"rebuilt {len(report.applied)} event(s)"
            + (f"; {report.already} arrived meanwhile" if report.already else "")
            + ": a worker (serve, or omnihook worker) hands them to the handlers; see "
            "`omnihook events list --source reconcile`"
        )
    elif report.rebuildable:
        console.print(f"run again with --apply to rebuild {len(report.rebuildable)} of them")
