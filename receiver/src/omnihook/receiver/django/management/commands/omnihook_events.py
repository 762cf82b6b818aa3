"""``python manage.py omnihook_events [list|show|replay ...]``: ``omnihook events`` on
settings.OMNIHOOK's store."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ....events_cli import events
from ...view import omnihook_settings


class Command(BaseCommand):
    help = "omnihook events (list, show, replay...) on settings.OMNIHOOK['STORE']."

    def add_arguments(self, parser: Any) -> None:
        # REMAINDER: `--json`, `--status dead`... belong to omnihook events, not to manage.py.
        parser.add_argument("arguments", nargs=argparse.REMAINDER,
                            help="what follows `omnihook events`")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = omnihook_settings()
        if not chosen.store:
            raise CommandError("settings.OMNIHOOK has no STORE: nothing is stored")
        arguments = list(options["arguments"]) or ["list"]
        try:
            events.main([*arguments, "--store", chosen.store], prog_name="omnihook_events",
                        standalone_mode=False)  # fmt: skip
        except SystemExit as exit_:
            if exit_.code:
                raise CommandError(f"omnihook events exited {exit_.code}") from None
