"""What can go wrong with a store, in the terms a caller acts on."""

from __future__ import annotations

__all__ = ["SchemaTooNew", "StoreError", "StoreRejected", "StoreUnavailable"]


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written right now (disk full, read-only file, lock held,
    privilege missing, network): try again later.

    The receiver answers 503 then, so that Rocket.Chat retries the delivery.
    """


class StoreRejected(StoreError):
    """The database refused this write's data itself (a constraint, a value it cannot hold):
    writing the same data again cannot help. Group commits retry the other writes of the batch
    without it, so it fails alone."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer omnihook than this one."""


def one_item_may_be_at_fault(exc: Exception) -> bool:
    """Whether a failed batch of writes may have failed for one item's sake: anything but the
    store being unavailable, which fails every write alike (see :class:`~.batching.Batcher`)."""
    return not isinstance(exc, StoreUnavailable)
