"""Per-key rate limits on create and remix: a token bucket per key, `per_minute` creates refilled
evenly; 0 turns it off. The buckets live in the store, so with several relays on one PostgreSQL
a key's limit holds across all of them (SQLite: in the one relay's memory).

A request takes its token before it is submitted (so concurrent requests cannot all pass) and
gives it back when it is refused (so only accepted requests count).
"""

from __future__ import annotations

from relay.errors import RateLimitExceeded
from relay.store import Store


class RateLimits:
    def __init__(self, store: Store, per_minute: int) -> None:
        self.store = store
        self.per_minute = per_minute

    async def take(self, key: str, now: float) -> None:
        if self.per_minute <= 0:
            return
        wait = await self.store.take_token(key, self.per_minute, now)
        if wait > 0:
            raise RateLimitExceeded(
                f"rate limit of {self.per_minute} creates per minute reached for this key",
                retry_after=wait,
            )

    async def give_back(self, key: str) -> None:
        if self.per_minute > 0:
            await self.store.give_token(key, self.per_minute)
