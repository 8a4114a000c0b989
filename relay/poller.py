"""The background refresh loop: keeps running tasks fresh.

Each round leases the due tasks (so two processes on one database never poll a task twice),
refreshes at most `polling.concurrency` at once, and sleeps until the next one is due or a new
task arrives. Every `SWEEP_S` it also fails what can no longer finish: tasks past
`polling.timeout_h`, and submits cut off by a crash. Everything it needs is in the database, so
after a restart it picks up where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from relay.lifecycle import Lifecycle
from relay.store import Store, TaskRow
from relay.submit import IDEMPOTENCY_TTL_S

log = logging.getLogger("relay.poller")

SWEEP_S = 10.0
MAX_SLEEP_S = 1.0
LEASE_MARGIN_S = 30.0


class Poller:
    def __init__(self, life: Lifecycle, store: Store, *, clock: Callable[[], float]) -> None:
        self.life = life
        self.store = store
        self.clock = clock
        self.lease = life.instance
        self._wake = asyncio.Event()
        self._sleep_until = 0.0  # when the current sleep ends (clock time)
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._last_sweep = 0.0

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="relay-poller")

    def wake(self) -> None:
        self._wake.set()

    def due_at(self, when: float) -> None:
        """A task falls due at `when`: cut the sleep short only if it ends later than that, and
        then at that time, not now (a create should not cost the database a poller round)."""
        if when >= self._sleep_until:
            return
        self._sleep_until = when
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, when - self.clock()), self._wake.set)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        await self.store.release_leases(self.lease)

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poller round failed; retrying")
                await asyncio.sleep(MAX_SLEEP_S)
                continue
            await self._sleep()

    async def round(self) -> None:
        """Sweep if due, then lease and start the refreshes that are due now."""
        now = self.clock()
        if now - self._last_sweep >= SWEEP_S:
            self._last_sweep = now
            await self.sweep()
        room = self.life.rt.config.polling.concurrency - len(self._running)
        if room <= 0:
            return
        timeouts = [c.config.timeout_s for c in self.life.rt.channels] or [30.0]
        due = await self.store.claim_due(
            now=now, lease_owner=self.lease, lease_s=max(timeouts) + LEASE_MARGIN_S, limit=room
        )
        for row in due:
            task = asyncio.create_task(self._refresh(row), name=f"refresh-{row.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def sweep(self) -> None:
        stale = await self.life.fail_stale_submissions()
        overdue = await self.life.fail_overdue()
        await self.store.purge_idempotency_keys(self.clock() - IDEMPOTENCY_TTL_S)
        if stale or overdue:
            log.warning("failed %d cut-off submits and %d overdue tasks", stale, overdue)

    async def _refresh(self, row: TaskRow) -> None:
        try:
            await self.life.refresh(row, self.lease)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("refresh of task %s failed", row.id)
            # the lease runs out and a later round retries it
        finally:
            self._wake.set()  # a slot is free

    async def _sleep(self) -> None:
        self._wake.clear()  # before looking: a wake() from here on cuts the sleep short
        self._sleep_until = math.inf  # while deciding, any due_at() sets its own timer
        delay = MAX_SLEEP_S
        if len(self._running) < self.life.rt.config.polling.concurrency:
            now = self.clock()
            due = await self.store.next_due(now)
            if due is not None:
                delay = min(MAX_SLEEP_S, max(0.005, due - now))
        self._sleep_until = self.clock() + delay
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=delay)
