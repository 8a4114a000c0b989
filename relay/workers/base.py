"""Background loops on one base: the poller, the copier, the webhook sender.

Each turn a worker works through what is due (`round`); when nothing was, it sleeps until the
next job falls due (`next_at`), at most `idle_s`, or until `wake()`, or until a time `due_at()`
names when that comes sooner than the sleep would end. A failing turn is logged and tried again;
`stop()` cancels it and waits. A turn the store could not serve (`StorageUnavailable`: a full
disk, the database locked by another process) is tried again after `STORAGE_RETRY_S` without a
traceback; the store logs that state once, when it starts and when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from relay.errors import StorageUnavailable

log = logging.getLogger("relay.workers")

STORAGE_RETRY_S = 2.0


class Worker:
    name = "worker"
    idle_s = 5.0

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._sleep_until = 0.0  # when the current sleep ends (clock time); inf while deciding
        self._timer: asyncio.TimerHandle | None = None

    async def round(self) -> int:
        """Work through what is due; returns how many jobs were started."""
        raise NotImplementedError

    async def next_at(self) -> float | None:
        """When the next job falls due, if one is waiting."""
        raise NotImplementedError

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=f"relay-{self.name}")

    def wake(self) -> None:
        self._wake.set()

    def due_at(self, when: float) -> None:
        """A job falls due at `when`: cut the sleep short only if it ends later than that, and
        then at that time, not now (a create should not cost the database a round)."""
        if when >= self._sleep_until:
            return
        self._sleep_until = when
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, when - self.clock()), self._wake.set
        )

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake() from here on cuts the sleep short
            self._sleep_until = math.inf  # while deciding, any due_at() sets its own timer
            delay = self.idle_s
            try:
                if await self.round():
                    continue
                due = await self.next_at()
                if due is not None:
                    delay = min(self.idle_s, max(0.005, due - self.clock()))
            except asyncio.CancelledError:
                raise
            except StorageUnavailable as exc:
                log.debug("%s round: %s; retrying", self.name, exc.reason)
                delay = max(delay, STORAGE_RETRY_S)
            except Exception:
                log.exception("%s round failed; retrying", self.name)
            self._sleep_until = self.clock() + delay
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that meets
            # a wake() in the same turn, and stop() then waits for ever (a hung shutdown)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
