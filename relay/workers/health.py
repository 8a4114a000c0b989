"""Channel health shared between relays on one store: each relay publishes the changes it makes
(a channel cooling, refused, back) and adopts the others' every few seconds, so a channel one
relay found broken is spared by all (a few seconds of staleness is fine). With one relay the
rows cost a write per change and a read every `idle_s`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from relay.events import ChannelChanged, Events
from relay.runtime import Runtime
from relay.store import HealthChange, Store
from relay.workers.base import Worker

log = logging.getLogger("relay.workers.health")


class HealthSync(Worker):
    name = "health"
    idle_s = 3.0

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        events: Events,
        *,
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.runtime = runtime
        self.instance = instance
        self._pending: list[HealthChange] = []
        # the newest change read so far. A relay starts on its own view: a state published
        # before it started is not adopted, so a restart (after fixing a key, say) retries every
        # channel as a reload does; later changes by others are adopted as they come
        self._seen = clock()
        events.subscribe(ChannelChanged, self._changed)

    def _changed(self, event: ChannelChanged) -> None:
        if event.remote:
            return
        change = HealthChange(
            event.channel, event.state, event.until, event.why, self.instance, event.at
        )
        self._pending.append(change)
        self.wake()

    async def round(self) -> int:
        pending, self._pending = self._pending, []
        for change in pending:
            await self.store.publish_health(change)
        for change in await self.store.health_changes(self._seen):
            self._seen = max(self._seen, change.changed_at)
            if change.instance != self.instance:
                self.runtime.channels.adopt(
                    change.channel, change.state, change.until, change.why, change.changed_at
                )
        return 0

    async def next_at(self) -> float | None:
        return None
