"""What can go wrong with a store, in the terms a caller acts on."""

from __future__ import annotations

__all__ = ["SchemaTooNew", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written right now (disk, lock, network): try again later.

    The receiver answers 503 then, so that Rocket.Chat retries the delivery.
    """


class SchemaTooNew(StoreError):
    """The database was migrated by a newer omnihook than this one."""
