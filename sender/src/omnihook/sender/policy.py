"""When to try again: Rocket.Chat's current rules, its documented ones, or your own."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from omnihook.store import backoff_delay

__all__ = ["POLICY_NAMES", "RetryPolicy"]

POLICY_NAMES = ("rocketchat", "documented", "exponential", "no-retry")
"""The built-in policies, by the names :meth:`RetryPolicy.named` and the CLI take."""

RetryOn = Literal["retryable", "any"]


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a delivery gets and how long to wait between them.

    Success is exactly HTTP 200 under every policy, as in Rocket.Chat. ``retry_on="retryable"``
    retries only 5xx, 429, network errors and timeouts (any other status is final);
    ``retry_on="any"`` retries every failure. The first wait is ``delay`` seconds, or
    ``timeout_factor`` × the request timeout when ``delay`` is ``None``; each further wait is
    multiplied by ``backoff``, capped at ``max_delay``, then spread by ± ``jitter`` (a fraction).
    """

    attempts: int = 5
    delay: float | None = None
    timeout_factor: float = 4.0
    backoff: float = 1.0
    max_delay: float | None = None
    jitter: float = 0.0
    retry_on: RetryOn = "retryable"
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.delay is not None and self.delay < 0:
            raise ValueError(f"delay must not be negative, got {self.delay}")
        if self.timeout_factor < 0:
            raise ValueError(f"timeout_factor must not be negative, got {self.timeout_factor}")
        if self.backoff < 1:
            raise ValueError(f"backoff must be at least 1, got {self.backoff}")
        if self.max_delay is not None and self.max_delay < 0:
            raise ValueError(f"max_delay must not be negative, got {self.max_delay}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, got {self.jitter}")
        if self.retry_on not in ("retryable", "any"):
            raise ValueError(f"retry_on must be 'retryable' or 'any', got {self.retry_on!r}")

    @classmethod
    def rocketchat(cls) -> RetryPolicy:
        """Current Rocket.Chat (since 2025): 5 attempts, 4 × timeout apart, only 5xx/429/network."""
        return cls(
            attempts=5,
            delay=None,
            timeout_factor=4.0,
            retry_on="retryable",
            name="rocketchat",
        )

    @classmethod
    def documented(cls) -> RetryPolicy:
        """The public docs (and Rocket.Chat up to ~2021): 10 retries, 10 s apart, on any non-200."""
        return cls(attempts=11, delay=10.0, retry_on="any", name="documented")

    @classmethod
    def exponential(
        cls,
        attempts: int = 8,
        initial: float = 1.0,
        factor: float = 2.0,
        max_delay: float = 300.0,
        jitter: float = 0.2,
    ) -> RetryPolicy:
        """Exponential backoff with jitter, retrying only what can succeed later."""
        return cls(
            attempts=attempts,
            delay=initial,
            backoff=factor,
            max_delay=max_delay,
            jitter=jitter,
            retry_on="retryable",
            name="exponential",
        )

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """One attempt, whatever happens."""
        return cls(attempts=1, name="no-retry")

    @classmethod
    def named(cls, name: str) -> RetryPolicy:
        """A built-in policy by name: ``rocketchat``, ``documented``, ``exponential``, ``no-retry``."""
        factories = dict(zip(POLICY_NAMES, (cls.rocketchat, cls.documented, cls.exponential,
                                            cls.no_retry), strict=True))  # fmt: skip
        try:
            return factories[name]()
        except KeyError:
            raise ValueError(
                f"unknown policy {name!r}; choose one of {', '.join(factories)}"
            ) from None

    def should_retry(self, status: int | None) -> bool:
        """Whether a failed attempt may be retried (``status`` is ``None`` for network errors and
        timeouts). Says nothing about how many attempts are left."""
        if status == 200:
            return False
        if status is None or self.retry_on == "any":
            return True
        return status >= 500 or status == 429

    def wait_before(self, retry: int, timeout: float, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the second attempt)."""
        base = self.delay if self.delay is not None else self.timeout_factor * timeout
        return backoff_delay(base, self.backoff, retry, self.max_delay, self.jitter, rng)
