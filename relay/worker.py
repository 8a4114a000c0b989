"""A background worker over jobs queued in the database (webhook deliveries, copies).

Each turn it works through what is due (`round`), and when nothing was, sleeps until the next job
falls due (`next_at`), at most `idle_s`, or until `wake()`. A failing turn is logged and tried
again; `stop()` cancels it and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger("relay.worker")


class Worker:
    name = "worker"
    idle_s = 5.0

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def round(self) -> int:
        """Work through what is due; returns how many jobs were attempted."""
        raise NotImplementedError

    async def next_at(self) -> float | None:
        """When the next job falls due, if one is waiting."""
        raise NotImplementedError

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=f"relay-{self.name}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self.idle_s
            try:
                if await self.round():
                    continue
                due = await self.next_at()
                if due is not None:
                    delay = min(self.idle_s, max(0.01, due - self.clock()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s round failed; retrying", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
