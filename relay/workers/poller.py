"""The poller: keeps running tasks fresh.

Each round leases the due tasks (so two processes on one database never poll a task twice) and
starts at most `polling.concurrency` refreshes at once; then it sleeps until the next one is due
or a new task arrives. Every `SWEEP_S` it also fails what can no longer finish (tasks past
`polling.timeout_h`, submits cut off by a crash), purges old idempotency keys, and recounts the
channels' in-flight tasks from the store, so tasks another process finished free their slots.
Everything it needs is in the database, so after a restart it picks up where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from relay.domain import Task
from relay.errors import StorageUnavailable
from relay.runtime import Runtime
from relay.store import Store
from relay.tasks.idempotency import IDEMPOTENCY_TTL_S
from relay.tasks.refresh import Lifecycle
from relay.workers.base import Worker

log = logging.getLogger("relay.workers.poller")

SWEEP_S = 10.0
LEASE_MARGIN_S = 30.0


class Poller(Worker):
    name = "poller"
    idle_s = 1.0

    def __init__(
        self,
        lifecycle: Lifecycle,
        store: Store,
        runtime: Runtime,
        *,
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(clock)
        self.lifecycle = lifecycle
        self.store = store
        self.runtime = runtime
        self.lease = instance
        self._running: set[asyncio.Task[None]] = set()
        self._last_sweep = 0.0

    def _room(self) -> int:
        return self.runtime.config.polling.concurrency - len(self._running)

    async def round(self) -> int:
        """Sweep if due, then lease and start the refreshes that are due now."""
        now = self.clock()
        if now - self._last_sweep >= SWEEP_S:
            self._last_sweep = now
            await self.sweep()
        room = self._room()
        if room <= 0:
            return 0
        timeouts = [c.config.timeout_s for c in self.runtime.channels] or [30.0]
        due = await self.store.claim_due(
            now=now, lease_owner=self.lease, lease_s=max(timeouts) + LEASE_MARGIN_S, limit=room
        )
        for task in due:
            job = asyncio.create_task(self._refresh(task), name=f"refresh-{task.id}")
            self._running.add(job)
            job.add_done_callback(self._finished)
        # fewer than there was room for: nothing else is due, so sleep until the next one
        return len(due) if len(due) == room else 0

    def _finished(self, job: asyncio.Task[None]) -> None:
        """A refresh ended. A loop that was out of slots is woken; one with room claimed
        everything due and sleeps until the next due time, at most `idle_s` (a wake per refresh
        cost every poll a claim and a next_due that found nothing). The refreshed task is due
        again `interval_s` or more from now: only an interval_s under idle_s needs a look."""
        full = self._room() <= 0
        self._running.discard(job)
        if full:
            self.wake()
            return
        soonest = self.runtime.config.polling.interval_s
        if soonest < self.idle_s:
            self.due_at(self.clock() + soonest)

    async def next_at(self) -> float | None:
        if self._room() <= 0:
            return None  # a finished refresh wakes the loop
        return await self.store.next_due(self.clock())

    async def sweep(self) -> None:
        stale = await self.lifecycle.fail_stale_submissions()
        overdue = await self.lifecycle.fail_overdue()
        await self.store.purge_idempotency_keys(self.clock() - IDEMPOTENCY_TTL_S)
        await self.runtime.channels.recount(self.store.count_active_by_channel)
        if stale or overdue:
            log.warning("failed %d cut-off submits and %d overdue tasks", stale, overdue)

    async def _refresh(self, task: Task) -> None:
        try:
            await self.lifecycle.refresh(task, self.lease)
        except asyncio.CancelledError:
            raise
        except StorageUnavailable as exc:  # the store logs that once; the lease runs out
            log.debug("refresh of task %s not recorded: %s", task.id, exc.reason)
        except Exception:
            log.exception("refresh of task %s failed", task.id)
            # the lease runs out and a later round retries it

    async def stop(self) -> None:
        await super().stop()
        for job in list(self._running):
            job.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        # on a full disk the leases run out by themselves; another start polls those tasks then
        with contextlib.suppress(StorageUnavailable):
            await self.store.release_leases(self.lease)
