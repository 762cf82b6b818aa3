"""Which events Rocket.Chat sends: the admin page's switches, read from Rocket.Chat or configured.

Reconcile never invents an event Rocket.Chat would not have sent, so it must know which of the
switches (Omnichannel > Webhooks) are on. It reads them from Rocket.Chat's settings when the bot
may (``view-privileged-setting``), else takes them from the bridge file's
``[rocketchat] webhook_events`` list.

>>> switches = await read_switches(api, configured=None)          # doctest: +SKIP
>>> switches.sends("Chat Close")                                  # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from omnihook.contracts import ADMIN_SWITCHES, EventType

from ..rest import RocketChatApi, RocketChatRefused

__all__ = ["NAVIGATION_SETTINGS", "WebhookSwitches", "read_switches"]

NAVIGATION_SETTINGS = (
    "Send_visitor_navigation_history_livechat_webhook_request",
    "Livechat_Visitor_navigation_as_a_message",
)
"""Both on: navigation messages are in the history, and sent as messages."""

_LABELS = {switch.label for switch in ADMIN_SWITCHES}


@dataclass(frozen=True)
class WebhookSwitches:
    """The switches that are on (their admin-page labels), and where that was learnt."""

    on: frozenset[str]
    navigation: bool = False
    source: str = "configuration"

    def sends(self, label: str) -> bool:
        """Whether the switch ``label`` ("Chat Close", "Visitor Messages", ...) is on."""
        return label in self.on

    @classmethod
    def from_names(cls, names: Iterable[str], *, navigation: bool = False) -> WebhookSwitches:
        """From configured names: switch labels ("Visitor Messages") or event types
        ("LivechatSession", "Chat Close"); "Visitor/Agent Messages" turns both message switches on.
        Raises ``ValueError`` naming an unknown one."""
        on: set[str] = set()
        for name in names:
            if name in _LABELS:
                on.add(name)
                continue
            event_type = EventType.lookup(name)  # ValueError names what is known
            on.update(s.label for s in ADMIN_SWITCHES if s.event_type is event_type)
        return cls(frozenset(on), navigation, "configuration")

    def describe(self) -> str:
        shown = ", ".join(s.label for s in ADMIN_SWITCHES if s.label in self.on) or "none"
        navigation = "; navigation history on" if self.navigation else ""
        return f"{shown} (from {self.source}){navigation}"


async def read_switches(api: RocketChatApi, configured: WebhookSwitches | None) -> WebhookSwitches:
    """The switches from Rocket.Chat's settings; ``configured`` when the bot may not read them.

    Raises :class:`~omnihook.receiver.rest.RocketChatRefused` when it may not and nothing is
    configured (the message says both ways out).
    """
    try:
        on = {s.label for s in ADMIN_SWITCHES if await api.setting(s.setting) is True}
        navigation = all([await api.setting(name) is True for name in NAVIGATION_SETTINGS])
    except RocketChatRefused as exc:
        if configured is not None:
            return configured
        raise RocketChatRefused(
            f"{exc}. Reconcile must know which webhook switches are on: give the bot "
            "view-privileged-setting, or list them in the bridge file ([rocketchat] "
            'webhook_events = ["Chat Start", "Chat Close", ...])'
        ) from exc
    return WebhookSwitches(frozenset(on), navigation, "Rocket.Chat's settings")
