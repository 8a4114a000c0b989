"""The use cases clients call: read, list, create, remix, delete, find content. No aiohttp.web
in here, and no HTTP statuses chosen anywhere but in the errors raised.

Where a new job goes and what a failed submit means is in submit.py; what happens to a running
task after that (polls, the one transition to completed or failed) is in lifecycle.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from relay import storage
from relay.auth import Principal
from relay.channels import Channel
from relay.errors import (
    InvalidRequest,
    NoAvailableChannel,
    NotFound,
    PermissionDenied,
    RelayError,
    UpstreamFailed,
    safe_message,
)
from relay.domain import ContentSource, Size
from relay.providers import errors
from relay.providers.base import now
from relay.providers.errors import ProviderError, TaskNotFound, Unsupported
from relay.runtime import Runtime, task_ref
from relay.store import Store, TaskRow
from relay.submit import Submitter, job_for
from relay.video import CreateRequest, RemixRequest

log = logging.getLogger("relay.tasks")


class Videos:
    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        *,
        instance: str,
        library: storage.Library | None = None,
        clock: Callable[[], float] = now,
    ) -> None:
        self.store = store
        self.library = library
        self._runtime = runtime
        self.instance = instance
        self.clock = clock
        self.submitter = Submitter(store, runtime, instance=instance, clock=clock)

    @property
    def rt(self) -> Runtime:
        return self._runtime()

    # --- reading ----------------------------------------------------------------------

    async def get(self, who: Principal, video_id: str) -> TaskRow:
        """A task the caller may see; another user's task is as unknown as a missing one."""
        row = await self.store.get_task(video_id, None if who.admin else who.user)
        if row is None:
            raise NotFound(f"no video with id {video_id!r}", param="video_id")
        return row

    async def list_page(
        self, who: Principal, *, after: str | None, limit: int, order: str, owner: str | None
    ) -> tuple[list[TaskRow], bool]:
        if owner is not None and not who.admin and owner != who.user:
            raise PermissionDenied("only an admin may list another user's videos")
        scope = None if owner == "all" else (owner or who.user)
        cursor = None
        if after is not None:
            cursor = await self.store.get_task(after, None if who.admin else who.user)
            if cursor is None or (scope is not None and cursor.owner != scope):
                raise InvalidRequest(
                    f"after: no video with id {after!r} in this list", param="after"
                )
        rows = await self.store.list_tasks(
            owner=scope, after=cursor, limit=limit + 1, descending=order == "desc"
        )
        return rows[:limit], len(rows) > limit

    # --- create and remix -------------------------------------------------------------

    async def create(
        self, who: Principal, req: CreateRequest, idempotency_key: str | None = None
    ) -> tuple[TaskRow, bool]:
        """Create a task; returns it and whether it is an idempotent replay."""
        if req.remix_video_id is not None:
            remix = RemixRequest(
                prompt=req.prompt,
                model=req.model if req.model_given else None,
                seconds=req.seconds if "seconds" in req.given else None,
                size=req.size if "size" in req.given else None,
                metadata=req.metadata,
            )
            return await self.remix(who, req.remix_video_id, remix, idempotency_key, req)
        rt = self.rt
        if not rt.channels.knows(req.model):
            raise NotFound(
                f"model {req.model!r} is not served here (see GET /v1/models)",
                code="model_not_found",
                param="model",
            )
        serving = rt.channels.serving(req.model)
        if not serving:
            raise NoAvailableChannel(f"every channel serving {req.model!r} is disabled")
        capable = self._capable(serving, req)
        return await self.submitter.submit_new(who, req, capable, idempotency_key, remix_of=None)

    def _capable(self, channels: list[Channel], req: CreateRequest) -> list[Channel]:
        capable, refusal = [], None
        for channel in channels:
            try:
                channel.adapter.check(*job_for(req, channel))
            except Unsupported as exc:
                refusal = refusal or exc
                continue
            capable.append(channel)
        if not capable:
            assert refusal is not None
            raise InvalidRequest(safe_message(refusal.message), code="unsupported_feature")
        return capable

    async def remix(
        self,
        who: Principal,
        source_id: str,
        req: RemixRequest,
        idempotency_key: str | None = None,
        original: CreateRequest | None = None,
    ) -> tuple[TaskRow, bool]:
        rt = self.rt
        source = await self.get(who, source_id)
        if source.status != "completed":
            raise InvalidRequest(
                f"video {source_id!r} is {source.status}: only a completed video can be remixed",
                code="video_not_ready",
                param="video_id",
            )
        channel = rt.channels.get(source.channel)
        if channel is None:
            raise NoAvailableChannel(f"the channel that made {source_id!r} is no longer configured")
        if "remix" not in channel.adapter.features:
            raise InvalidRequest(
                f"provider {channel.config.provider!r} does not support remix",
                code="unsupported_feature",
            )
        model = req.model or source.model
        if model not in channel.config.models:
            raise InvalidRequest(
                f"a remix runs on the channel of its source, which does not serve {model!r}",
                param="model",
            )
        seconds = req.seconds or int(source.seconds)
        size = req.size or Size.parse(source.size) or Size(ratio=(16, 9))
        create = replace(
            original or CreateRequest(prompt=req.prompt, model=model, seconds=seconds, size=size),
            prompt=req.prompt,
            model=model,
            seconds=seconds,
            size=size,
            images=(),
            media=(),
            metadata=req.metadata,
            remix_video_id=source.id,
        )
        request, model = job_for(create, channel)
        channel.adapter.check(replace(request, images=(), media=(), remix_of=source.id), model)
        return await self.submitter.submit_new(
            who, create, [channel], idempotency_key, remix_of=source
        )

    async def delete(self, who: Principal, video_id: str) -> None:
        row = await self.get(who, video_id)
        if row.active:
            raise InvalidRequest(
                f"video {video_id!r} is {row.status}: only a completed or failed video can be "
                "deleted",
                code="video_not_finished",
                param="video_id",
            )
        channel = self.rt.channels.get(row.channel)
        if channel is not None and row.upstream_id is not None:
            try:
                await channel.adapter.delete(task_ref(row))
            except ProviderError as exc:  # best effort: the local record goes either way
                log.info("upstream delete of %s failed: %s", row.id, exc.for_log)
        await self.store.delete_task(row.id)
        if self.library is not None:
            self.library.remove(row.id)

    async def content(self, who: Principal, video_id: str, variant: str) -> ContentSource:
        """The stored copy when the relay has one, else the provider's source."""
        row = await self.get(who, video_id)
        if row.status == "completed" and self.library is not None:
            copy = await self.store.stored_copy(row.id, variant)
            local = self.library.local(copy) if copy is not None else None
            if local is not None:
                return local
        row, channel = await self._finished(who, video_id, variant)
        try:
            return await channel.adapter.content(task_ref(row), variant)
        except ProviderError as exc:
            raise _content_error(video_id, exc) from None

    async def refresh_content(
        self, who: Principal, video_id: str, variant: str
    ) -> ContentSource | None:
        """A fresh source after the upstream URL expired, when the provider has a way."""
        row, channel = await self._finished(who, video_id, variant)
        try:
            return await channel.adapter.refresh_content(task_ref(row), variant)
        except ProviderError as exc:
            log.info("refresh of %s failed: %s", video_id, exc.for_log)
            return None

    async def source_for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        """Where the copier reads a finished task's variant from; None if there is no such task
        any more. Provider errors pass through: the copier decides what they mean."""
        row = await self.store.get_task(video_id)
        channel = self.rt.channels.get(row.channel) if row is not None else None
        if row is None or row.status != "completed" or channel is None:
            return None
        return await channel.adapter.content(task_ref(row), variant)

    async def refresh_for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        row = await self.store.get_task(video_id)
        channel = self.rt.channels.get(row.channel) if row is not None else None
        if row is None or channel is None:
            return None
        try:
            return await channel.adapter.refresh_content(task_ref(row), variant)
        except ProviderError:
            return None

    async def _finished(
        self, who: Principal, video_id: str, variant: str
    ) -> tuple[TaskRow, Channel]:
        row = await self.get(who, video_id)
        if row.status == "failed":
            raise NotFound(f"video {video_id!r} failed: it has no content", code="video_failed")
        if row.status != "completed":
            raise NotFound(f"video {video_id!r} is not ready yet", code="video_not_ready")
        channel = self.rt.channels.get(row.channel)
        if channel is None:
            raise NotFound(
                f"the channel that made {video_id!r} is no longer configured",
                code="variant_not_available",
            )
        if variant not in channel.adapter.variants:
            raise NotFound(
                f"provider {channel.config.provider!r} does not produce a {variant}",
                code="variant_not_available",
                param="variant",
            )
        return row, channel


def _content_error(video_id: str, exc: ProviderError) -> RelayError:
    if isinstance(exc, errors.VariantUnavailable):
        return NotFound(safe_message(exc.message), code="variant_not_available")
    if isinstance(exc, errors.NotReady):
        return NotFound(f"video {video_id!r} is not ready yet", code="video_not_ready")
    if isinstance(exc, TaskNotFound):
        return NotFound(f"the content of {video_id!r} has expired upstream", code="not_found")
    return UpstreamFailed(safe_message(exc.message))
