"""RetryPolicy: the waits and the retry decisions, computed without sending anything."""

from __future__ import annotations

import random

import pytest

from omnihook.sender import RetryPolicy


def test_rocketchat_policy_waits_four_timeouts_and_retries_only_retryable() -> None:
    policy = RetryPolicy.rocketchat()
    assert policy.attempts == 5
    assert [policy.wait_before(n, timeout=5.0) for n in range(1, 5)] == [20.0] * 4
    assert policy.wait_before(1, timeout=2.5) == 10.0
    assert [policy.should_retry(s) for s in (None, 500, 503, 429, 400, 401, 404, 201, 204, 200)] == [
        True, True, True, True, False, False, False, False, False, False,
    ]  # fmt: skip


def test_documented_policy_is_ten_retries_ten_seconds_apart_on_any_failure() -> None:
    policy = RetryPolicy.documented()
    assert policy.attempts == 11
    assert policy.wait_before(3, timeout=5.0) == 10.0
    assert policy.should_retry(400)
    assert policy.should_retry(201)
    assert not policy.should_retry(200)


def test_exponential_backoff_is_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy.exponential(
        attempts=10, initial=1.0, factor=2.0, max_delay=30.0, jitter=0.2
    )
    rng = random.Random(7)
    waits = [policy.wait_before(n, timeout=5.0, rng=rng) for n in range(1, 10)]
    nominal = [1, 2, 4, 8, 16, 30, 30, 30, 30]
    for wait, base in zip(waits, nominal, strict=True):
        assert base * 0.8 <= wait <= base * 1.2
    assert len(set(waits[5:])) > 1  # jitter spreads the capped waits


def test_named_policies_and_no_retry() -> None:
    assert RetryPolicy.named("rocketchat") == RetryPolicy.rocketchat()
    assert RetryPolicy.named("no-retry").attempts == 1
    with pytest.raises(ValueError, match="unknown policy 'fast'"):
        RetryPolicy.named("fast")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts must be at least 1"),
        ({"delay": -1}, "delay must not be negative"),
        ({"backoff": 0.5}, "backoff must be at least 1"),
        ({"jitter": 1.5}, "jitter is a fraction"),
        ({"retry_on": "sometimes"}, "retry_on must be"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_every_public_name_of_the_sender_can_be_imported() -> None:
    import omnihook.sender as sender

    assert [name for name in sender.__all__ if not hasattr(sender, name)] == []
