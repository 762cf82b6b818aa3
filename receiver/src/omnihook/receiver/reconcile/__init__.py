"""Nothing missing: compare Rocket.Chat with the store and rebuild what its webhook dropped.

Rocket.Chat sends each event once and keeps its retries in memory; a receiver down longer than
about 80 s loses events for good. Reconcile reads what Rocket.Chat keeps (its Omnichannel rooms,
their messages, visitors and agents) through its REST API, works out which webhooks it sent
(:mod:`.expected`), finds the ones the store never received (by identity,
:func:`omnihook.contracts.event_identity`), and rebuilds each one as ``sendToCRM`` built it,
accepted through the webhook's own path, marked ``source = "reconcile"``.

>>> switches = await read_switches(api, configured=None)                     # doctest: +SKIP
>>> reconciler = Reconciler(api, store, switches)                            # doctest: +SKIP
>>> report = await reconciler.apply(await reconciler.find(since, until))     # doctest: +SKIP

``omnihook reconcile --since 24h [--apply]`` runs it once; a ``[rocketchat]`` block with
``reconcile_every`` runs it inside ``serve`` and ``worker`` (:class:`ReconcileLoop`).
"""

from .expected import ExpectedEvent, Unrebuildable, expected_events
from .loop import LOCK_NAME, ReconcileLoop
from .reconciler import Gap, Reconciler, ReconcileReport, read_build_settings
from .switches import NAVIGATION_SETTINGS, WebhookSwitches, read_switches
from .window import parse_duration, parse_moment, window

__all__ = [
    "LOCK_NAME",
    "NAVIGATION_SETTINGS",
    "ExpectedEvent",
    "Gap",
    "ReconcileLoop",
    "ReconcileReport",
    "Reconciler",
    "Unrebuildable",
    "WebhookSwitches",
    "expected_events",
    "parse_duration",
    "parse_moment",
    "read_build_settings",
    "read_switches",
    "window",
]
