"""``python manage.py omnihook_worker``: handle the stored events with settings.OMNIHOOK's router."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from omnihook.store import Store

from ....cli import _run_worker
from ....ops.logs import configure_logging
from ....worker import DEFAULT_CONCURRENCY, HandlingPolicy
from ...view import omnihook_settings


class Command(BaseCommand):
    help = "Handle the events the webhook view stored (settings.OMNIHOOK['STORE']), until stopped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
        parser.add_argument("--grace", type=float, default=10.0)

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging("info")
        chosen = omnihook_settings()
        if not chosen.store:
            raise CommandError("settings.OMNIHOOK has no STORE: the view handles inline")
        asyncio.run(_run_worker(Store(chosen.store), chosen.router, HandlingPolicy(),
                                options["concurrency"], options["grace"], 30.0))  # fmt: skip
