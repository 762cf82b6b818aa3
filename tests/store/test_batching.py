"""Group commits: callers share batches, each gets its own result, failures reach their batch."""

from __future__ import annotations

import asyncio

import pytest

from omnihook.store.batching import Batcher


async def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def process(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)  # a commit takes time: the next callers pile up meanwhile
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(process, max_batch=50)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(120)))
    await batcher.close()
    assert results == [n * 10 for n in range(120)]
    assert len(batches) < 10
    assert max(len(batch) for batch in batches) == 50


async def test_at_most_concurrency_batches_run_at_once() -> None:
    running = 0
    peak = 0

    async def process(items: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return items

    batcher: Batcher[int, int] = Batcher(process, max_batch=3, concurrency=2)
    for wave in range(5):
        await asyncio.gather(*(batcher.submit(wave * 100 + n) for n in range(12)))
    await batcher.close()
    assert peak == 2


async def test_a_failed_batch_fails_its_callers_only() -> None:
    async def process(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("disk full")
        return items

    batcher: Batcher[int, int] = Batcher(process, max_batch=1)
    assert await batcher.submit(1) == 1
    with pytest.raises(RuntimeError, match="disk full"):
        await batcher.submit(13)
    assert await batcher.submit(2) == 2
    await batcher.close()


async def test_a_batch_failing_for_one_item_is_split_until_that_item_fails_alone() -> None:
    calls: list[list[int]] = []

    async def process(items: list[int]) -> list[int]:
        calls.append(items)
        await asyncio.sleep(0.001)
        if 13 in items:
            raise ValueError("13 cannot be stored")
        return items

    batcher: Batcher[int, int] = Batcher(
        process, max_batch=64, isolate=lambda exc: isinstance(exc, ValueError)
    )
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in range(64)), return_exceptions=True)
    await batcher.close()
    assert [o for o in outcomes if isinstance(o, Exception)] == [outcomes[13]]
    assert isinstance(outcomes[13], ValueError)
    assert [o for n, o in enumerate(outcomes) if n != 13] == [n for n in range(64) if n != 13]
    # Halving finds the culprit in a handful of writes, not one write per item.
    assert len(calls) <= 2 + 2 * 7


async def test_a_failure_that_is_not_isolated_fails_the_whole_batch_at_once() -> None:
    calls = 0

    async def process(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)
        raise ConnectionError("database down")

    batcher: Batcher[int, int] = Batcher(
        process, max_batch=64, isolate=lambda exc: isinstance(exc, ValueError)
    )
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in range(20)), return_exceptions=True)
    await batcher.close()
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert calls <= 2  # the first caller's batch, then everyone who queued meanwhile
