"""A running task's life after submit: each poll's news applied (progress, backoff), and the one
transition to completed or failed, with its webhook events and copy jobs.

The poller calls `refresh` for each leased task, and the sweeps. What a failed poll means is
policy (policy.py, phase poll), plus the rules the adapter declares (`PollRules`): rate limits and
outages never fail a task (it backs off), refused credentials do after a bound, an error streak
does where the adapter says so, an unknown upstream id fails it as expired (after the adapter's
grace window), and the job timeout fails whatever is still running.
"""

from __future__ import annotations

import logging
from typing import Any

from relay.domain import TERMINAL, Outcome, Task
from relay.errors import safe_message
from relay.events import PollRan, TaskFinished, upstream_op
from relay.hosting import STATE_KEY
from relay.policy import ChannelEffect, Phase, TaskEffect, decide
from relay.providers.base import Update
from relay.providers.errors import ProviderError, RateLimited
from relay.routing import Channel
from relay.scrub import log_excerpt
from relay.storage import copy_variants
from relay.tasks.context import Context
from relay.workers.webhooks import deliveries

log = logging.getLogger("relay.tasks.refresh")

POLL_BACKOFF = 1.5  # the next interval after news
ERROR_BACKOFF = 2.0  # the next interval after an error


def _reason(task_id: str, native: str) -> str:
    """The upstream's reason for a failed task as the client reads it; what the cleaning took
    out stays at DEBUG, scrubbed."""
    shown = safe_message(native) or "the upstream gave no readable reason"
    if shown != native:
        log.debug("task %s: the upstream's reason: %s", task_id, log_excerpt(native))
    return shown


_MISSING = object()


def outcome_of(task_id: str, status: str, update: Update) -> Outcome:
    """A poll's news of a job that ended, as the task's outcome."""
    error = update.error
    return Outcome(
        "completed" if status == "completed" else "failed",
        (error.code if error else "generation_failed") if status == "failed" else None,
        _reason(task_id, error.message) if error else None,
        completed_at=update.completed_at,
        expires_at=update.expires_at,
    )


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


MAX_REMEMBERED_ERRORS = 10_000  # tasks whose failing polls are remembered for log-once


class Lifecycle:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # the poll error last logged per task: a failing poll is logged when it changes
        self._poll_errors: dict[str, str] = {}

    async def refresh(self, task: Task, lease: str) -> None:
        """Poll one leased task upstream and record what changed."""
        ctx = self.ctx
        channel = ctx.runtime.channels.get(task.channel)
        now = ctx.clock()
        if channel is None:
            log.warning("task %s: channel %s is no longer configured", task.id, task.channel)
            await self._reschedule(
                task, lease, ctx.runtime.config.polling.max_interval_s, why="no such channel"
            )
            return
        lag = max(0.0, now - (task.next_poll_at or now))
        try:
            update = await upstream_op(
                ctx.events, channel, "poll", channel.adapter.poll(task.ref())
            )
        except ProviderError as exc:
            ctx.events.emit(PollRan(task.id, channel.name, lag, type(exc).__name__))
            await self._poll_failed(task, lease, channel, exc, now)
            return
        ctx.events.emit(PollRan(task.id, channel.name, lag, "ok"))
        if self._poll_errors.pop(task.id, None) is not None:
            log.info("task %s: polls answer again", task.id)
        if update.unknown_status:
            channel.adapter.note_unknown_status(update.unknown_status)
        await self._apply(task, lease, update, channel, now)

    async def _poll_failed(
        self, task: Task, lease: str, channel: Channel, exc: ProviderError, now: float
    ) -> None:
        if exc.excerpt:  # INFO and WARNING lines carry exc.for_log, never a body
            log.debug("task %s: channel %s answered: %s", task.id, channel.name, exc.excerpt)
        decision = decide(exc, Phase.POLL)
        if decision.channel is not ChannelEffect.NONE:
            self.ctx.runtime.channels.record(
                channel, decision.channel, error=type(exc).__name__, why=exc.for_log
            )
        rules = channel.adapter.poll_rules
        errors = task.poll_errors + 1
        if decision.task is TaskEffect.EXPIRE:
            young = now - (task.submitted_at or task.created_at) < rules.not_found_window_s
            if young and task.poll_errors < len(rules.not_found_backoff):
                wait = rules.not_found_backoff[task.poll_errors]
                why = "the upstream does not know the new id yet"
                await self._reschedule(task, lease, wait, errors=errors, exact=True, why=why)
                return
            await self._fail(task, lease, decision.code, safe_message(exc.message))
        elif decision.task is TaskEffect.COUNT:
            limit = decision.limit if decision.limit is not None else rules.fail_after_errors
            if limit is not None and errors >= limit:
                message = safe_message(exc.message)
                if decision.limit is None:
                    message += f" ({errors} polls in a row)"
                await self._fail(task, lease, decision.code, message)
            else:
                self._poll_failing(task, exc)
                why = f"the poll failed: {type(exc).__name__}"
                await self._reschedule(task, lease, None, errors=errors, why=why)
        else:
            if not isinstance(exc, RateLimited):  # a rate limit is the channel's line, not ours
                self._poll_failing(task, exc)
            await self._reschedule(
                task,
                lease,
                exc.retry_after if isinstance(exc, RateLimited) else None,
                why=f"the poll failed: {type(exc).__name__}",
            )

    def _poll_failing(self, task: Task, exc: ProviderError) -> None:
        """One INFO line when a task's polls start failing or fail differently, not one a
        poll; the detail of every failure is a DEBUG line."""
        what = f"{type(exc).__name__}: {exc.for_log}"
        log.debug("task %s: poll failed: %s", task.id, exc.for_log)
        if self._poll_errors.get(task.id) == what:
            return
        if task.id not in self._poll_errors and len(self._poll_errors) >= MAX_REMEMBERED_ERRORS:
            self._poll_errors.pop(next(iter(self._poll_errors)))
        self._poll_errors[task.id] = what
        log.info(
            "task %s: polls fail (%s); retrying, logged again when this changes", task.id, what
        )

    async def _fail(self, task: Task, lease: str, code: str | None, message: str) -> None:
        outcome = Outcome.failed(code or "generation_failed", message)
        await self.finish(task.id, task.channel, lease, outcome)

    async def _apply(
        self, task: Task, lease: str, update: Update, channel: Channel, now: float
    ) -> None:
        status = update.status or task.status
        elapsed = now - (task.submitted_at or task.created_at)
        progress = next_progress(
            task.progress, status, update.progress, elapsed, channel.adapter.typical_run_s
        )
        # written only when a poll brings news: adapters that echo what they keep (a creation
        # time, the same signed URL) would otherwise rewrite the state on every poll
        news = any(task.upstream_state.get(k, _MISSING) != v for k, v in update.state.items())
        state = {**task.upstream_state, **update.state} if news else None
        if status in TERMINAL:
            outcome = outcome_of(task.id, status, update)
            await self.finish(
                task.id,
                task.channel,
                lease,
                outcome,
                progress=progress,
                upstream_state=state,
                seconds=update.seconds,
                size=update.size,
            )
            return
        polling = self.ctx.runtime.config.polling
        interval = min(
            (task.poll_interval or polling.interval_s) * POLL_BACKOFF, polling.max_interval_s
        )
        if update.poll_after_s:
            interval = max(interval, update.poll_after_s)
        log.debug(
            "task %s: %s, %d%%; next poll in %.1f s%s",
            task.id,
            status,
            progress,
            interval,
            " (the upstream asked for that wait)" if interval == update.poll_after_s else "",
        )
        await self.ctx.store.record_poll(
            task.id,
            lease,
            status=status,
            progress=progress,
            upstream_state=state,
            seconds=update.seconds,
            size=update.size,
            now=now,
            next_poll_at=now + interval,
            interval=interval,
        )

    async def _reschedule(
        self,
        task: Task,
        lease: str,
        at_least: float | None,
        *,
        errors: int | None = None,
        exact: bool = False,
        why: str,
    ) -> None:
        polling = self.ctx.runtime.config.polling
        interval = min(
            (task.poll_interval or polling.interval_s) * ERROR_BACKOFF, polling.max_interval_s
        )
        if at_least:
            interval = at_least if exact else max(interval, at_least)
        log.debug("task %s: next poll in %.1f s (%s)", task.id, interval, why)
        await self.ctx.store.reschedule(
            task.id,
            lease,
            next_poll_at=self.ctx.clock() + interval,
            interval=interval,
            poll_errors=errors,
        )

    # --- the one transition -----------------------------------------------------------------

    async def finish(
        self, task_id: str, channel_name: str, lease: str | None, outcome: Outcome, **news: Any
    ) -> Task | None:
        """The one transition out of a running state; it succeeds once, whoever tries (None
        for everyone else)."""
        ctx = self.ctx
        runtime = ctx.runtime
        now = ctx.clock()
        channel = runtime.channels.get(channel_name)
        copies: list[str] = []
        if outcome.status == "completed" and runtime.config.storage.keep_videos and channel:
            copies = copy_variants(channel.adapter.variants)
        finished = await ctx.store.finish(
            task_id,
            lease,
            outcome,
            now=now,
            deliveries=deliveries(task_id, outcome.status, runtime.config.webhooks, now),
            copies=copies,
            **news,
        )
        if finished is None:
            return None
        self._poll_errors.pop(task_id, None)
        hosted = finished.upstream_state.get(STATE_KEY)
        if hosted and ctx.hosting is not None:  # no provider may fetch them any more
            await ctx.hosting.drop([str(path) for path in hosted])
        ctx.events.emit(
            TaskFinished(
                finished.id,
                finished.owner,
                finished.channel,
                finished.provider,
                finished.status,
                finished.error_code,
            )
        )
        return finished

    # --- sweeps -----------------------------------------------------------------------------

    async def fail_stale_submissions(self) -> int:
        """Fail tasks whose submit was cut off (a crash between row and upstream id)."""
        count = 0
        for task in await self.ctx.store.stale_submissions(self.ctx.clock()):
            outcome = Outcome.failed(
                "upstream_error",
                "the relay stopped while submitting this task; it was not submitted again, "
                "because the first attempt may have reached the upstream",
            )
            if await self.finish(task.id, task.channel, None, outcome):
                count += 1
                if self.ctx.hosting is not None:
                    await self.ctx.hosting.drop_all(task.id)
        return count

    async def fail_overdue(self) -> int:
        hours = self.ctx.runtime.config.polling.timeout_h
        count = 0
        for task in await self.ctx.store.overdue(self.ctx.clock() - hours * 3600):
            outcome = Outcome.failed(
                "upstream_timeout", f"the task did not finish within {hours:g} h"
            )
            if await self.finish(task.id, task.channel, None, outcome):
                count += 1
        return count
