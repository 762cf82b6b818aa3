"""``omnihook status``: is the bridge well, from its store; exit 1 when something needs attention."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console

from omnihook.store import Store
from omnihook.store.cli import run_with_store, store_option

from .ops.status import BridgeStatus, StatusLimits, read_status

__all__ = ["status"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option(
    "--max-pending-age",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds the oldest unhandled event may wait before it needs attention.",
)
@click.option(
    "--max-reconcile-age",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds since the last reconcile run before it needs attention (set it where a "
    "process reconciles: reconcile_every).",
)
@store_option
def status(
    as_json: bool, max_pending_age: float, max_reconcile_age: float | None, store_url: str
) -> None:
    """The bridge's state from its store: writable, pending, failed and dead events, the oldest
    one's age, the outbox, the last reconcile, each CRM adapter's circuit.

    Exits 0 when all is well and 1 when something needs attention (each said in one line), so it
    fits a cron job or a container health check.
    """
    limits = StatusLimits(max_pending_age, max_reconcile_age)

    async def work(store: Store) -> BridgeStatus:
        return await read_status(store, time.time())

    found = run_with_store(store_url, work)
    if as_json:
        click.echo(json.dumps(found.as_dict(limits)))
    else:
        _print(found, limits)
    if found.problems(limits):
        raise SystemExit(1)


def _print(found: BridgeStatus, limits: StatusLimits) -> None:
    console = Console(highlight=False)
    data = found.as_dict(limits)
    console.print(f"store: {'ok' if data['store']['ok'] else data['store']['problem']}")
    for part in ("events", "outbox"):
        if data[part] is not None:
            counts = {k: v for k, v in data[part].items() if k != "oldest_age_seconds"}
            shown = ", ".join(f"{n} {s}" for s, n in counts.items())
            console.print(f"{part}: {shown}; oldest unhandled "
                          f"{data[part]['oldest_age_seconds']:.0f} s")  # fmt: skip
    last = data["reconcile"]
    if last is not None:
        ago = found.now - last["at"]
        console.print(f"last reconcile: {last.get('outcome')} {ago:.0f} s ago"
                      + (f", {last.get('rebuilt')} rebuilt" if "rebuilt" in last else ""))  # fmt: skip
    else:
        console.print("last reconcile: none recorded")
    for name, circuit in data["circuits"].items():
        console.print(f"circuit {name}: {circuit.get('state')}")
    problems = found.problems(limits)
    for line in problems:
        console.print(f"needs attention: {line}", style="bold red")
    if not problems:
        console.print("all well", style="green")
