"""The open-file limit: every connection is a file descriptor, and a slow client holds its own."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["raise_open_file_limit"]

logger = logging.getLogger("omnihook.receiver.http")

_UNLIMITED_CAP = 1_048_576
"""The most to ask for when the hard limit is unlimited (Linux's default ``fs.nr_open``)."""

_NR_OPEN = Path("/proc/sys/fs/nr_open")
"""Where Linux says the most a process may open; it refuses a soft limit above it, even under an
unlimited hard limit."""


def raise_open_file_limit() -> int | None:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit and log one line saying so,
    or saying why it cannot. Returns the soft limit now in force (``None`` where the system has
    no such limit, as on Windows; ``resource.RLIM_INFINITY`` when it is unlimited already).

    With Linux's usual soft limit of 1,024, about a thousand idle connections left no descriptor
    for a normal request. Under an unlimited hard limit it asks for ``fs.nr_open`` (at most
    1,048,576), then half as much until the system agrees. Call it once at the start of your own
    server process:

    >>> from omnihook.receiver.http import raise_open_file_limit
    >>> limit = raise_open_file_limit()
    """
    try:
        import resource
    except ImportError:
        logger.info("open-file limit: not settable on this system")
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        logger.info("open-file limit: unlimited already")
        return soft
    unlimited = hard == resource.RLIM_INFINITY
    wanted = min(_nr_open() or _UNLIMITED_CAP, _UNLIMITED_CAP) if unlimited else hard
    if soft >= wanted:
        logger.info("open-file limit: %s (the hard limit already)", f"{soft:,}")
        return soft
    while True:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            break
        except (ValueError, OSError) as exc:
            lower = wanted // 2
            if not unlimited or lower <= soft:
                logger.warning("open-file limit stays at %s, cannot raise it to %s (%s): about "
                               "that many connections at once, slow ones included",
                               f"{soft:,}", f"{wanted:,}", exc)  # fmt: skip
                return soft
            wanted = lower  # the system caps below what it calls unlimited: ask for less
    which = "the hard limit is unlimited" if unlimited else "the hard limit"
    logger.info("open-file limit raised from %s to %s (%s)", f"{soft:,}", f"{wanted:,}", which)
    return wanted


def _nr_open() -> int | None:
    try:
        return int(_NR_OPEN.read_text().strip())
    except (OSError, ValueError):
        return None
