"""The Django app that brings omnihook's ``manage.py`` commands."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["OmnihookConfig"]


class OmnihookConfig(AppConfig):
    name = "omnihook.receiver.django"
    label = "omnihook"
    verbose_name = "omnihook (Rocket.Chat webhooks)"
