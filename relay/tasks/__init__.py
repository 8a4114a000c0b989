"""The use cases, free of aiohttp.web: read, list, create, remix, delete, find content, and a
running task's lifecycle. No HTTP status is chosen here but in the errors raised.

    create.py   create and remix: defaults, routing, idempotency, the rate budget, submit
    refresh.py  polls and the one transition to completed or failed; the sweeps
    cancel.py   stop a running task at its provider, or settle it on the upstream's outcome
    content.py  where a finished task's bytes are
    context.py  what they share
"""

from __future__ import annotations

import logging

from relay.domain import Principal, Task
from relay.errors import InvalidRequest, PermissionDenied
from relay.events import upstream_op
from relay.providers.errors import ProviderError
from relay.storage import StorageError
from relay.tasks.cancel import Canceller
from relay.tasks.content import Contents
from relay.tasks.context import Context
from relay.tasks.create import Creator
from relay.tasks.refresh import Lifecycle

__all__ = ["Context", "Videos"]

log = logging.getLogger("relay.tasks")


class Videos:
    """Every use case over one context: what the web handlers and the workers call."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lifecycle = Lifecycle(ctx)
        self.creator = Creator(ctx, self.lifecycle)
        self.contents = Contents(ctx)
        self.create = self.creator.create
        self.remix = self.creator.remix
        self.cancel = Canceller(ctx, self.lifecycle).cancel

    async def get(self, who: Principal, video_id: str) -> Task:
        return await self.ctx.find(who, video_id)

    async def list_page(
        self,
        who: Principal,
        *,
        after: str | None,
        limit: int,
        order: str,
        owner: str | None,
        query: str | None = None,
    ) -> tuple[list[Task], bool]:
        if owner is not None and not who.admin and owner != who.user:
            raise PermissionDenied("only an admin may list another user's videos")
        scope = None if owner == "all" else (owner or who.user)
        cursor = None
        store = self.ctx.store
        if query is not None and "\x00" in query:
            raise InvalidRequest("q must not contain NUL characters", param="q")
        if after is not None:
            cursor = (
                await store.get_task(after, None if who.admin else who.user)
                if "\x00" not in after
                else None
            )
            if cursor is None or (scope is not None and cursor.owner != scope):
                raise InvalidRequest(
                    f"after: no video with id {after!r} in this list", param="after"
                )
        tasks = await store.list_tasks(
            owner=scope,
            after=cursor,
            limit=limit + 1,
            descending=order == "desc",
            prompt_contains=query,
        )
        return tasks[:limit], len(tasks) > limit

    async def delete(self, who: Principal, video_id: str) -> None:
        task = await self.ctx.find(who, video_id)
        if task.active:
            raise InvalidRequest(
                f"video {video_id!r} is {task.status}: only a completed or failed video can be "
                f"deleted; stop it first with POST /v1/videos/{video_id}/cancel",
                code="video_not_finished",
                param="video_id",
            )
        channel = self.ctx.runtime.channels.get(task.channel)
        if channel is not None and task.upstream_id is not None:
            try:
                await upstream_op(
                    self.ctx.events, channel, "delete", channel.adapter.delete(task.ref())
                )
            except ProviderError as exc:  # best effort: the local record goes either way
                log.info("upstream delete of %s failed: %s", task.id, exc.for_log)
        await self.ctx.store.delete_task(task.id)
        if self.ctx.library is not None:
            try:
                await self.ctx.library.remove(task.id)
            except StorageError as exc:  # the record is gone; retention cannot find it now
                log.warning("could not remove the stored copies of %s: %s", task.id, exc)
