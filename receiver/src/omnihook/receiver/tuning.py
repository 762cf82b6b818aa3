"""Process-wide settings that ``omnihook serve`` and ``omnihook worker`` apply for throughput.

Both are measured (``uv run python -m bench``), and both are process-wide, so the library never
applies them on its own: call :func:`tune_process` at the start of your own server process.
"""

from __future__ import annotations

import gc

from omnihook.store import favour_database_threads

__all__ = ["GC_THRESHOLD", "tune_process"]

GC_THRESHOLD = 50_000
"""Allocations between young-generation collections (Python's default: 700)."""


def tune_process() -> None:
    """Let database threads get the GIL back sooner (see
    :func:`~omnihook.store.favour_database_threads`), and collect garbage less often.

    Parsing a Chat Close event creates a few hundred objects; with Python's default threshold a
    loaded receiver runs a collection every few events, each walking every live object (the
    events in flight, the app): the receiver benchmark's SQLite store accepted 1,410 Close events
    per second with the default, 2,727 with this. The objects alive at start are moved out of the
    collector's way for good (``gc.freeze``).
    """
    favour_database_threads()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
