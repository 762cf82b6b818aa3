"""The open-file limit: every connection is a file descriptor, and a slow client holds its own."""

from __future__ import annotations

import logging

__all__ = ["raise_open_file_limit"]

logger = logging.getLogger("omnihook.receiver.http")

_UNLIMITED_CAP = 1_048_576
"""What to ask for when the hard limit is unlimited (Linux refuses more than ``fs.nr_open``,
whose default is this)."""


def raise_open_file_limit() -> int | None:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit and log one line saying so,
    or saying why it cannot. Returns the soft limit now in force (``None`` where the system has
    no such limit, as on Windows).

    With Linux's usual soft limit of 1,024, about a thousand idle connections left no descriptor
    for a normal request. Call it once at the start of your own server process:

    >>> from omnihook.receiver.http import raise_open_file_limit
    >>> limit = raise_open_file_limit()
    """
    try:
        import resource
    except ImportError:
        logger.info("open-file limit: not settable on this system")
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _UNLIMITED_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft >= wanted:
        logger.info("open-file limit: %s (the hard limit already)", f"{soft:,}")
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        logger.warning("open-file limit stays at %s, cannot raise it to %s (%s): about that many "
                       "connections at once, slow ones included", f"{soft:,}", f"{wanted:,}", exc)  # fmt: skip
        return soft
    which = "the hard limit" if hard != resource.RLIM_INFINITY else "the hard limit is unlimited"
    logger.info("open-file limit raised from %s to %s (%s)", f"{soft:,}", f"{wanted:,}", which)
    return wanted
