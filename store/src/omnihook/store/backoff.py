"""The wait before a retry: exponential, capped, jittered. Shared by the sender's retry policy
and the receiver's handling policy, whose retries the store schedules."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(
    base: float,
    factor: float,
    retry: int,
    max_delay: float | None = None,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds before retry number ``retry`` (1 for the second attempt): ``base × factor^(retry-1)``,
    capped at ``max_delay``, then spread uniformly by ± ``jitter`` (a fraction of the wait)."""
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    wait = base * factor ** (retry - 1)
    if max_delay is not None:
        wait = min(wait, max_delay)
    if jitter:
        spread = wait * jitter
        wait += (rng or random).uniform(-spread, spread)
    return max(wait, 0.0)
