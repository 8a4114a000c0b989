"""The loop every background worker runs on (relay/workers/base.py)."""

from __future__ import annotations

import asyncio
import time

from relay.workers.base import Worker


class Idle(Worker):
    name = "idle"
    idle_s = 30.0

    def __init__(self) -> None:
        super().__init__(time.monotonic)
        self.rounds = 0

    async def round(self) -> int:
        self.rounds += 1
        return 0

    async def next_at(self) -> float | None:
        return None


async def test_a_wake_at_the_moment_of_stop_does_not_keep_the_worker_running():
    # Python 3.11's asyncio.wait_for returned the inner result when a cancel met a wait that had
    # just finished, so the cancel was lost and stop() waited for ever (a hung shutdown)
    worker = Idle()
    worker.start()
    for _ in range(3):
        await asyncio.sleep(0)
    assert worker.rounds == 1
    worker.wake()
    stopping = asyncio.create_task(worker.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2)  # waits without cancelling anything
    assert stopping in done, "stop() is still waiting for the loop"
    assert worker._loop is not None and worker._loop.cancelled()


async def test_a_wake_cuts_the_sleep_short_and_a_stop_ends_the_loop():
    worker = Idle()
    worker.start()
    await asyncio.sleep(0.01)
    worker.wake()
    await asyncio.sleep(0.01)
    assert worker.rounds == 2
    await worker.stop()
    assert worker._loop is not None and worker._loop.cancelled()
