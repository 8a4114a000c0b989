"""What several relays would share: channel health rows, rate-limit buckets. A SQLite database
belongs to one relay, so its buckets live in this process; health rows are kept in the table
anyway, so the same code runs on every backend."""

from __future__ import annotations

from collections.abc import Callable

from relay.store.buckets import Buckets
from relay.store.rows import HealthChange
from relay.store.sqlite.connection import Part


class Shared(Part):
    _buckets: Buckets

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """One relay owns a SQLite database: there is nobody else to hear."""

    async def publish_health(self, change: HealthChange) -> None:
        await self._db.execute(
            "INSERT INTO channel_health (channel, state, until, why, instance, changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET"
            " state = excluded.state, until = excluded.until, why = excluded.why,"
            " instance = excluded.instance, changed_at = excluded.changed_at"
            " WHERE excluded.changed_at >= channel_health.changed_at",
            (
                change.channel,
                change.state,
                change.until,
                change.why,
                change.instance,
                change.changed_at,
            ),
        )

    async def health_changes(self, since: float) -> list[HealthChange]:
        rows = await self._db.execute_fetchall(
            "SELECT channel, state, until, why, instance, changed_at FROM channel_health"
            " WHERE changed_at > ? ORDER BY changed_at",
            (since,),
        )
        return [HealthChange(*row) for row in rows]

    async def take_token(self, key_id: str, per_minute: int, now: float) -> float:
        return self._buckets.take(key_id, per_minute, now)

    async def give_token(self, key_id: str, per_minute: int) -> None:
        self._buckets.give(key_id, per_minute)
