"""The one statistic every part of the benchmark reports."""

from __future__ import annotations

__all__ = ["percentile_ms"]


def percentile_ms(sorted_seconds: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``sorted_seconds``, in milliseconds; 0 when empty.

    >>> percentile_ms([0.001, 0.002, 0.010], 0.99)
    10.0
    """
    if not sorted_seconds:
        return 0.0
    return sorted_seconds[min(len(sorted_seconds) - 1, int(q * len(sorted_seconds)))] * 1000
