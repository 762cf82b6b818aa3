"""Group commits: many concurrent callers, one transaction.

A request that must not be answered before its write is durable waits for a commit. Committing
each request alone makes the disk (or the database round trip) the limit; instead, whatever
arrives while one batch is being written goes into the next batch, so under load each commit
carries many writes and at low load a write still goes out at once.

A batch that fails for one item's sake (the database refused its data) must not fail the others:
it is split in halves and each half written again, down to the culprit, so one poison delivery
fails alone while the rest are committed (a few more transactions, only when it happens).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batcher", "each_item_once"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs ``process`` on batches of submitted items; each caller gets its item's result.

    Up to ``concurrency`` batches are written at once (a database with several connections
    commits one batch while the next one is written); each takes what is queued when it starts.
    When ``process`` raises an exception for which ``isolate(exc)`` is true, the batch is split
    and written again in halves until the failing items fail alone; other exceptions (the
    database is down) fail the whole batch at once.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[list[R]]],
        max_batch: int = 256,
        concurrency: int = 1,
        isolate: Callable[[Exception], bool] = lambda exc: False,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._process = process
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._isolate = isolate
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for the commit of the batch that carries it."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._task = loop.create_task(self._consume(self._queue), name="omnihook-batcher")
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def close(self) -> None:
        """Stop taking batches (callers still waiting get ``CancelledError``)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _consume(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                first = await queue.get()
                await slots.acquire()
                batch = [first]
                while len(batch) < self._max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                task = asyncio.create_task(self._write(batch, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            while not queue.empty():
                _, future = queue.get_nowait()
                future.cancel()

    async def _write(
        self, batch: list[tuple[T, asyncio.Future[R]]], slots: asyncio.Semaphore
    ) -> None:
        try:
            live = [(item, future) for item, future in batch if not future.done()]
            if live:
                await self._settle(live)
        finally:
            slots.release()
            for _, future in batch:
                if not future.done():
                    future.cancel()

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._process([item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and self._isolate(exc):
                middle = len(batch) // 2
                await self._settle(batch[:middle])
                await self._settle(batch[middle:])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


def each_item_once(
    batch: list[T], key: Callable[[T], object], write: Callable[[list[T]], list[bool]]
) -> list[bool]:
    """``write(batch)``; but when two items share a key (one leased row twice: a lease lost and
    taken again), item by item in order, since one statement may not write a row twice and only
    the first outcome that holds the lease may count."""
    if len({key(item) for item in batch}) < len(batch):
        return [write([item]) == [True] for item in batch]
    return write(batch)
