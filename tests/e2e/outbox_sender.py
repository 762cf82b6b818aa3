"""The sender side of the crash test, as its own process.

python outbox_sender.py enqueue URL STORE ROOMS PER_ROOM   # store the deliveries, send nothing
python outbox_sender.py deliver URL STORE                  # deliver the outbox, then exit
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from omnihook.sender import RetryPolicy, Sender
from tests.processes import message

# Fast retries and a short lease so that the test's outages are ridden out in seconds.
POLICY = RetryPolicy(attempts=1000, delay=0.2, name="crash-test")


async def main(mode: str, url: str, store: str, *counts: str) -> None:
    sender = Sender(url, token="crash-token", timeout=2.0, policy=POLICY, outbox=store,
                    outbox_lease=3.0, concurrency=16)  # fmt: skip
    try:
        if mode == "enqueue":
            rooms, per_room = int(counts[0]), int(counts[1])
            for n in range(per_room):
                await asyncio.gather(*(sender.enqueue(message(f"R{r}", n)) for r in range(rooms)))
        else:
            await sender.drain()
    finally:
        await sender.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
