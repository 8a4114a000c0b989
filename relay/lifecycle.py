"""A running task's life after submit: each poll's news applied (progress, backoff), and the
one transition to completed or failed, with its webhook events and copy jobs.

The poller calls `refresh` for each leased task and the sweeps; nothing here speaks HTTP to a
client. Poll failures follow the providers' shared rules: rate limits and outages never fail a
task (it backs off), repeated credential refusals do after a bound, an unknown upstream id fails
it as expired, and the job timeout fails whatever is still running.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from relay import storage, webhooks
from relay.channels import Channel
from relay.errors import safe_message
from relay.providers.base import now
from relay.domain import TERMINAL
from relay.providers.base import Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    RateLimited,
    TaskNotFound,
    TransientError,
)
from relay.runtime import Runtime, task_ref
from relay.store import Store, TaskRow

log = logging.getLogger("relay.lifecycle")

AUTH_FAILURES_BEFORE_FAIL = 5
POLL_BACKOFF = 1.5

FinishedListener = Callable[[TaskRow], Awaitable[None]]


def next_progress(
    old: int, status: str, reported: int | None, elapsed: float, typical_s: float
) -> int:
    """Progress never goes down; without an upstream figure, time decides, within 1..95."""
    if status == "completed":
        return 100
    if status != "in_progress":
        return old
    if reported is None:
        value = max(1, min(95, int(100 * elapsed / max(typical_s, 1.0))))
    else:
        value = max(1, min(99, reported))
    return max(old, value)


class Lifecycle:
    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        *,
        instance: str,
        clock: Callable[[], float] = now,
    ) -> None:
        self.store = store
        self._runtime = runtime
        self.instance = instance  # the lease owner name of this process
        self.clock = clock
        self.finished_listeners: list[FinishedListener] = []

    @property
    def rt(self) -> Runtime:
        return self._runtime()

    async def refresh(self, row: TaskRow, lease: str) -> None:
        """Poll one leased task upstream and record what changed."""
        channel = self.rt.channels.get(row.channel)
        now = self.clock()
        if channel is None:
            log.warning("task %s: channel %s is no longer configured", row.id, row.channel)
            await self._reschedule(row, lease, self.rt.config.polling.max_interval_s)
            return
        rules = channel.adapter.poll_rules
        try:
            update = await channel.adapter.poll(task_ref(row))
        except TaskNotFound as exc:
            young = now - (row.submitted_at or row.created_at) < rules.not_found_window_s
            if young and row.poll_errors < len(rules.not_found_backoff):
                wait = rules.not_found_backoff[row.poll_errors]
                await self._reschedule(row, lease, wait, errors=row.poll_errors + 1, exact=True)
                return
            await self.finish(row, lease, "failed", "task_expired", safe_message(exc.message))
            return
        except TransientError as exc:
            limit = rules.fail_after_errors
            if limit is not None and row.poll_errors + 1 >= limit:
                await self.finish(
                    row,
                    lease,
                    "failed",
                    "upstream_error",
                    f"{safe_message(exc.message)} ({row.poll_errors + 1} polls in a row)",
                )
            else:
                await self._reschedule(row, lease, None, errors=row.poll_errors + 1)
            return
        except AuthFailed as exc:
            if row.poll_errors + 1 >= AUTH_FAILURES_BEFORE_FAIL:
                await self.finish(
                    row, lease, "failed", "upstream_auth_failed", safe_message(exc.message)
                )
            else:
                await self._reschedule(row, lease, None, errors=row.poll_errors + 1)
            return
        except RateLimited as exc:
            await self._reschedule(row, lease, exc.retry_after)
            return
        except ProviderError as exc:
            log.info("task %s: poll failed, will retry: %s", row.id, exc.for_log)
            await self._reschedule(row, lease, None)
            return
        if update.unknown_status:
            channel.adapter.note_unknown_status(update.unknown_status)
        await self._apply(row, lease, update, channel, now)

    async def _apply(
        self, row: TaskRow, lease: str, update: Update, channel: Channel, now: float
    ) -> None:
        status = update.status or row.status
        elapsed = now - (row.submitted_at or row.created_at)
        progress = next_progress(
            row.progress, status, update.progress, elapsed, channel.adapter.typical_run_s
        )
        values: dict[str, Any] = {"progress": progress, "updated_at": now, "poll_errors": 0}
        if update.state:
            values["upstream_state"] = {**row.upstream_state, **update.state}
        if update.seconds:
            values["seconds"] = update.seconds
        if update.size:
            values["size"] = update.size
        if status in TERMINAL:
            error = update.error
            await self.finish(
                row,
                lease,
                status,
                (error.code if error else "generation_failed") if status == "failed" else None,
                safe_message(error.message) if error else None,
                extra=values,
                completed_at=update.completed_at,
                expires_at=update.expires_at,
            )
            return
        values["status"] = status
        interval = min(
            (row.poll_interval or self.rt.config.polling.interval_s) * POLL_BACKOFF,
            self.rt.config.polling.max_interval_s,
        )
        if update.poll_after_s:
            interval = max(interval, update.poll_after_s)
        values.update(
            next_poll_at=now + interval, poll_interval=interval, lease_owner=None, lease_until=None
        )
        await self.store.update_task(row.id, values, only_active=True, lease_owner=lease)

    async def _reschedule(
        self,
        row: TaskRow,
        lease: str,
        at_least: float | None,
        *,
        errors: int | None = None,
        exact: bool = False,
    ) -> None:
        polling = self.rt.config.polling
        interval = min((row.poll_interval or polling.interval_s) * 2, polling.max_interval_s)
        if at_least:
            interval = at_least if exact else max(interval, at_least)
        now = self.clock()
        values: dict[str, Any] = {
            "next_poll_at": now + interval,
            "poll_interval": interval,
            "lease_owner": None,
            "lease_until": None,
        }
        if errors is not None:
            values["poll_errors"] = errors
        await self.store.update_task(row.id, values, only_active=True, lease_owner=lease)

    async def finish(
        self,
        row: TaskRow,
        lease: str | None,
        status: str,
        code: str | None,
        message: str | None,
        *,
        extra: dict[str, Any] | None = None,
        completed_at: float | None = None,
        expires_at: float | None = None,
    ) -> bool:
        """The one transition out of a running state; it succeeds once, whoever tries."""
        now = self.clock()
        values: dict[str, Any] = {
            **(extra or {}),
            "status": status,
            "error_code": code,
            "error_message": message,
            "completed_at": completed_at or now,
            "expires_at": expires_at if status == "completed" else None,
            "updated_at": now,
            "next_poll_at": None,
            "lease_owner": None,
            "lease_until": None,
        }
        if status == "completed":
            values["progress"] = 100
        events = webhooks.deliveries(row.id, status, self.rt.config.webhooks, now)
        channel = self.rt.channels.get(row.channel)
        copies: list[str] = []
        if status == "completed" and channel is not None and self.rt.config.storage.keep_videos:
            copies = storage.copy_variants(channel.adapter.variants)
        done = await self.store.finish_task(
            row.id, values, lease_owner=lease, deliveries=events, copies=copies, now=now
        )
        if not done:
            return False
        if channel is not None and row.upstream_id is not None:
            channel.in_flight = max(0, channel.in_flight - 1)
        log.info("task %s %s%s", row.id, status, f" ({code})" if code else "")
        finished = await self.store.get_task(row.id)
        if finished is not None:
            for listener in self.finished_listeners:
                try:
                    await listener(finished)
                except Exception:
                    log.exception("a listener failed for task %s", row.id)
        return True

    async def fail_stale_submissions(self) -> int:
        """Fail tasks whose submit was cut off (a crash between row and upstream id)."""
        count = 0
        for row in await self.store.stale_submissions(self.clock()):
            if await self.finish(
                row,
                None,
                "failed",
                "upstream_error",
                "the relay stopped while submitting this task; it was not submitted again, "
                "because the first attempt may have reached the upstream",
            ):
                count += 1
        return count

    async def fail_overdue(self) -> int:
        hours = self.rt.config.polling.timeout_h
        count = 0
        for row in await self.store.overdue(self.clock() - hours * 3600):
            if await self.finish(
                row,
                None,
                "failed",
                "upstream_timeout",
                f"the task did not finish within {hours:g} h",
            ):
                count += 1
        return count
