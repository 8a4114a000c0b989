"""Where a finished task's bytes are: the stored copy when the relay has one, else the provider's
source; a fresh source after an upstream URL expired. What a provider error means here is policy
(phase content for a client, phase copy for the copier)."""

from __future__ import annotations

import logging

from relay.domain import ContentSource, Principal, Task
from relay.errors import NotFound, RelayError, UpstreamFailed, safe_message
from relay.events import upstream_op
from relay.policy import ChannelEffect, Phase, decide
from relay.providers.errors import ProviderError
from relay.routing import Channel
from relay.tasks.context import Context

log = logging.getLogger("relay.tasks.content")


class Contents:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def source(self, who: Principal, video_id: str, variant: str) -> ContentSource:
        """The stored copy when the relay has one, else the provider's source."""
        task = await self.ctx.find(who, video_id)
        library = self.ctx.library
        if task.status == "completed" and library is not None:
            copy = await self.ctx.store.stored_copy(task.id, variant)
            stored = library.source(copy) if copy is not None else None
            if stored is not None:
                return stored
        task, channel = self._finished(task, variant)
        try:
            return await upstream_op(
                self.ctx.events, channel, "content", channel.adapter.content(task.ref(), variant)
            )
        except ProviderError as exc:
            raise self._client_error(video_id, channel, exc) from None

    async def refresh(self, who: Principal, video_id: str, variant: str) -> ContentSource | None:
        """A fresh source after the upstream URL expired, when the provider has a way."""
        task, channel = self._finished(await self.ctx.find(who, video_id), variant)
        try:
            call = channel.adapter.refresh_content(task.ref(), variant)
            return await upstream_op(self.ctx.events, channel, "refresh", call)
        except ProviderError as exc:
            log.info("refresh of %s failed: %s", video_id, exc.for_log)
            return None

    async def for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        """Where the copier reads a finished task's variant from; None if there is no such task
        any more. Provider errors pass through: the copier asks policy what they mean."""
        task = await self.ctx.store.get_task(video_id)
        channel = self.ctx.runtime.channels.get(task.channel) if task is not None else None
        if task is None or task.status != "completed" or channel is None:
            return None
        call = channel.adapter.content(task.ref(), variant)
        return await upstream_op(self.ctx.events, channel, "content", call)

    async def refresh_for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        task = await self.ctx.store.get_task(video_id)
        channel = self.ctx.runtime.channels.get(task.channel) if task is not None else None
        if task is None or channel is None:
            return None
        try:
            call = channel.adapter.refresh_content(task.ref(), variant)
            return await upstream_op(self.ctx.events, channel, "refresh", call)
        except ProviderError:
            return None

    def _finished(self, task: Task, variant: str) -> tuple[Task, Channel]:
        if task.status == "failed":
            raise NotFound(f"video {task.id!r} failed: it has no content", code="video_failed")
        if task.status != "completed":
            raise NotFound(f"video {task.id!r} is not ready yet", code="video_not_ready")
        channel = self.ctx.runtime.channels.get(task.channel)
        if channel is None:
            raise NotFound(
                f"the channel that made {task.id!r} is no longer configured",
                code="variant_not_available",
            )
        if variant not in channel.adapter.variants:
            raise NotFound(
                f"provider {channel.provider!r} does not produce a {variant}",
                code="variant_not_available",
                param="variant",
            )
        return task, channel

    def _client_error(self, video_id: str, channel: Channel, exc: ProviderError) -> RelayError:
        decision = decide(exc, Phase.CONTENT)
        if decision.channel is not ChannelEffect.NONE:
            self.ctx.runtime.channels.record(
                channel, decision.channel, error=type(exc).__name__, why=exc.for_log
            )
        if decision.status == 404:
            messages = {
                "video_not_ready": f"video {video_id!r} is not ready yet",
                "not_found": f"the content of {video_id!r} has expired upstream",
            }
            code = decision.code or "not_found"
            return NotFound(messages.get(code, safe_message(exc.message)), code=code)
        log.warning("content of %s: the upstream failed: %s", video_id, exc.for_log)
        return UpstreamFailed(safe_message(exc.message))
