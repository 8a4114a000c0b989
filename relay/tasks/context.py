"""What every use case shares: the store, the runtime (channels, keys, limits, config), the
events, the stored-copy library and the hosted inputs beside it, a clock, and this process's
name for leases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relay.domain import Principal, Task
from relay.errors import NotFound
from relay.events import Events
from relay.hosting import Hosting
from relay.runtime import Runtime
from relay.storage import Library
from relay.store import Store


@dataclass
class Context:
    store: Store
    runtime: Runtime
    events: Events
    clock: Callable[[], float]
    instance: str  # the lease owner name of this process
    library: Library | None = None
    hosting: Hosting | None = None  # inputs served to providers that fetch by URL only

    async def find(self, who: Principal, video_id: str) -> Task:
        """A task the caller may see; another user's task is as unknown as a missing one."""
        task = (  # an id never holds a NUL, and PostgreSQL text cannot be asked about one
            await self.store.get_task(video_id, None if who.admin else who.user)
            if "\x00" not in video_id
            else None
        )
        if task is None:
            raise NotFound(f"no video with id {video_id!r}", param="video_id")
        return task
