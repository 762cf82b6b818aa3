"""The claim loop that the receiver's worker and the sender's dispatcher share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from omnihook.store.claims import ClaimLoop


class Queue(ClaimLoop[int]):
    """Items from a list; ``during_claim`` runs inside the next claim, after its read."""

    def __init__(self) -> None:
        super().__init__(concurrency=4, lease=30, poll_interval=3600, name="test",
                         logger=logging.getLogger("test"), noun="item")  # fmt: skip
        self.waiting: list[int] = []
        self.handled: list[int] = []
        self.done = asyncio.Event()
        self.during_claim: Callable[[], None] | None = None

    async def claim(self, limit: int) -> list[int]:
        taken, self.waiting[:limit] = self.waiting[:limit], []
        if self.during_claim is not None:
            during, self.during_claim = self.during_claim, None
            during()
        return taken

    def item_id(self, item: int) -> int:
        return item

    async def handle(self, item: int) -> None:
        self.handled.append(item)
        self.done.set()

    async def renew(self, ids: list[int]) -> None:
        pass

    async def release(self, ids: list[int]) -> None:
        pass


async def test_a_wake_while_a_claim_runs_is_not_lost() -> None:
    # Work committed after the claim read the store, announced while the claim still runs: the
    # loop must claim again at once, not at its next poll (an hour here).
    loop = Queue()

    def committed_meanwhile() -> None:
        loop.waiting.append(7)
        loop.wake()

    loop.during_claim = committed_meanwhile
    running = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(loop.done.wait(), 5)
    finally:
        await loop.stop()
        await running
    assert loop.handled == [7]
