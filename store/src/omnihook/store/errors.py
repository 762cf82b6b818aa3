"""What can go wrong with a store, in the terms a caller acts on."""

from __future__ import annotations

__all__ = [
    "SchemaTooNew",
    "StoreError",
    "StoreFailed",
    "StoreRejected",
    "StoreUnavailable",
    "one_item_may_be_at_fault",
]


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written right now (disk full, read-only file, lock held,
    privilege missing, network): try again later.

    The receiver answers 503 then, so that Rocket.Chat retries the delivery. ``cause`` names the
    kind of trouble in a few words, without where the store is or who connects to it (what an
    unauthenticated health check may show): ``"read-only"``, ``"disk full"``, ``"lock held"``,
    ``"permission missing"``, ``"unreachable"``, ``"timeout"`` or ``"unavailable"``.
    """

    def __init__(self, message: str, cause: str = "unavailable") -> None:
        super().__init__(message)
        self.cause = cause


class StoreFailed(StoreUnavailable):
    """The database failed this write for a reason omnihook does not foresee (a constraint, a
    value it could not bind): a bug or a schema changed by hand, not the payload's fault. It is
    answered like an unavailable store (503: the sender retries, nothing is dropped), and group
    commits write the other items of its batch without it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "write failed")


class StoreRejected(StoreError):
    """The database refuses this write's data itself (a value it cannot hold: out of range, too
    big): writing the same data again cannot help. Group commits write the other items of its
    batch without it, so it fails alone; the receiver answers it 422."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer omnihook than this one."""


def one_item_may_be_at_fault(exc: Exception) -> bool:
    """Whether a failed batch of writes may have failed for one item's sake: anything but the
    store being unavailable, which fails every write alike (see :class:`~.batching.Batcher`)."""
    return not isinstance(exc, StoreUnavailable) or isinstance(exc, StoreFailed)
