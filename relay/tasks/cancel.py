"""Cancel: stop a queued or in-progress task at its provider, and finish it as failed with
`cancelled` through the one transition (so webhooks, metrics and the channel's slot follow as for
any other end).

What an upstream error means here is policy (policy.py, phase cancel). A refusal because of the
job's state settles the task: one poll, and a job that ended anyway takes its real outcome (the
race "it finished just now"); one still running runs on and the client hears why.

A task with no upstream id yet is being submitted: it is refused with `video_not_submitted`
(try again in a moment) rather than marked cancelled locally, because the submit in flight may
still create a job upstream, which would then run, and be billed, with nobody watching it.
"""

from __future__ import annotations

import logging
from typing import Any

from relay.domain import TERMINAL, Outcome, Principal, Task
from relay.errors import InvalidRequest, NotFound, UpstreamFailed, safe_message
from relay.events import upstream_op
from relay.policy import ChannelEffect, Decision, Phase, TaskEffect, decide
from relay.providers.errors import ProviderError, TaskNotFound
from relay.routing import Channel
from relay.tasks.context import Context
from relay.tasks.refresh import Lifecycle, outcome_of

log = logging.getLogger("relay.tasks.cancel")

CANCELLED = Outcome.failed("cancelled", "the video was cancelled at the client's request")


class Canceller:
    def __init__(self, ctx: Context, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle

    async def cancel(self, who: Principal, video_id: str) -> Task:
        ctx = self.ctx
        task = await ctx.find(who, video_id)
        if not task.active:
            raise InvalidRequest(
                f"video {video_id!r} is {task.status}: only a queued or in-progress video can "
                "be cancelled",
                code="video_not_active",
                param="video_id",
            )
        channel = ctx.runtime.channels.get(task.channel)
        if channel is None:
            raise InvalidRequest(
                f"video {video_id!r} ran on a channel that is no longer configured, so it "
                "cannot be cancelled",
                code="unsupported_feature",
                param="video_id",
            )
        if not channel.adapter.can_cancel(task.upstream_model):
            raise InvalidRequest(
                f"provider {task.provider!r} cannot cancel a running video "
                f"(model {task.model!r}); it runs on",
                code="unsupported_feature",
                param="video_id",
            )
        if task.upstream_id is None:
            raise InvalidRequest(
                f"video {video_id!r} is still being submitted to its provider; cancel it again "
                "in a moment",
                code="video_not_submitted",
                param="video_id",
            )
        try:
            await upstream_op(ctx.events, channel, "cancel", channel.adapter.cancel(task.ref()))
        except ProviderError as exc:
            return await self._not_stopped(task, channel, exc)
        log.info("task %s: cancelled upstream on channel %s", task.id, channel.name)
        return await self._finish(task, CANCELLED)

    async def _not_stopped(self, task: Task, channel: Channel, exc: ProviderError) -> Task:
        if exc.excerpt:
            log.debug(
                "task %s: channel %s answered the cancel: %s", task.id, channel.name, exc.excerpt
            )
        decision = decide(exc, Phase.CANCEL)
        if decision.channel is not ChannelEffect.NONE:
            self.ctx.runtime.channels.record(
                channel, decision.channel, error=type(exc).__name__, why=exc.for_log
            )
        log.info("task %s: the upstream did not cancel it: %s", task.id, exc.for_log)
        if decision.task is TaskEffect.SETTLE:
            return await self._settle(task, channel, exc, decision)
        raise _client_error(task, decision, exc)

    async def _settle(
        self, task: Task, channel: Channel, refusal: ProviderError, decision: Decision
    ) -> Task:
        """One poll after a refusal: a job that ended anyway takes its real outcome."""
        try:
            update = await upstream_op(
                self.ctx.events, channel, "poll", channel.adapter.poll(task.ref())
            )
        except TaskNotFound as exc:
            since = self.ctx.clock() - (task.submitted_at or task.created_at)
            if since < channel.adapter.poll_rules.not_found_window_s:
                # a brand-new job the upstream does not list yet may still start
                raise UpstreamFailed(
                    "the provider does not know this video's job yet; cancel it again in a "
                    "moment (the video runs on)"
                ) from None
            log.info("task %s: the upstream no longer has the job: %s", task.id, exc.for_log)
            return await self._finish(task, CANCELLED)
        except ProviderError as exc:
            log.info("task %s: the poll after a refused cancel failed: %s", task.id, exc.for_log)
            raise UpstreamFailed(
                "the provider did not say whether the video stopped; it runs on, and a retry "
                "is safe"
            ) from None
        status = update.status or task.status
        if status not in TERMINAL:
            raise _client_error(task, decision, refusal)
        news: dict[str, Any] = {"seconds": update.seconds, "size": update.size}
        if update.state:
            news["upstream_state"] = {**task.upstream_state, **update.state}
        log.info("task %s: it had already ended upstream (%s)", task.id, status)
        return await self._finish(task, outcome_of(task.id, status, update), **news)

    async def _finish(self, task: Task, outcome: Outcome, **news: Any) -> Task:
        finished = await self.lifecycle.finish(task.id, task.channel, None, outcome, **news)
        if finished is not None:
            return finished
        # the poller ended it in the meantime: that outcome stands, and is what the client sees
        current = await self.ctx.store.get_task(task.id, None)
        if current is None:
            raise NotFound(f"no video with id {task.id!r}", param="video_id")
        return current


def _client_error(
    task: Task, decision: Decision, exc: ProviderError
) -> InvalidRequest | UpstreamFailed:
    reason = safe_message(exc.message)
    if decision.status == 400:
        return InvalidRequest(
            f"provider {task.provider!r} would not stop video {task.id!r}: {reason}; it runs on",
            code=decision.code or "unsupported_feature",
            param="video_id",
        )
    return UpstreamFailed(
        f"the provider did not cancel video {task.id!r}: {reason}; it runs on, and a retry is safe"
    )
