"""What several relays share besides tasks: channel health rows (each relay writes the changes
it makes, reads the others' every few seconds) and per-key rate-limit buckets, each taken with
one UPDATE so a key's limit holds across relays."""

from __future__ import annotations

from relay.store.postgres.connection import Part
from relay.store.rows import HealthChange

# Refill, then take one token if there is one; RETURNING says whether it was taken.
_TAKE = (
    "INSERT INTO rate_buckets AS b (key_id, tokens, at) VALUES ($1, $2 - 1, $3)"
    " ON CONFLICT (key_id) DO UPDATE SET"
    " tokens = least($2, b.tokens + ($3 - b.at) * $2 / 60.0) - 1, at = $3"
    " WHERE least($2, b.tokens + ($3 - b.at) * $2 / 60.0) >= 1"
    " RETURNING tokens"
)


class Shared(Part):
    async def publish_health(self, change: HealthChange) -> None:
        await self._pool.execute(
            "INSERT INTO channel_health AS h (channel, state, until, why, instance, changed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel) DO UPDATE SET"
            " state = excluded.state, until = excluded.until, why = excluded.why,"
            " instance = excluded.instance, changed_at = excluded.changed_at"
            " WHERE excluded.changed_at >= h.changed_at",
            change.channel,
            change.state,
            change.until,
            change.why,
            change.instance,
            change.changed_at,
        )

    async def health_changes(self, since: float) -> list[HealthChange]:
        rows = await self._pool.fetch(
            "SELECT channel, state, until, why, instance, changed_at FROM channel_health"
            " WHERE changed_at > $1 ORDER BY changed_at",
            since,
        )
        return [HealthChange(*row) for row in rows]

    async def take_token(self, key_id: str, per_minute: int, now: float) -> float:
        taken = await self._pool.fetchval(_TAKE, key_id, float(per_minute), now)
        if taken is not None:
            return 0.0
        row = await self._pool.fetchrow(
            "SELECT tokens, at FROM rate_buckets WHERE key_id = $1", key_id
        )
        assert row is not None, "_TAKE inserts the bucket"
        tokens = min(per_minute, row["tokens"] + (now - row["at"]) * per_minute / 60.0)
        return float(max(0.0, (1.0 - tokens) * 60.0 / per_minute))

    async def give_token(self, key_id: str, per_minute: int) -> None:
        await self._pool.execute(
            "UPDATE rate_buckets SET tokens = least($2, tokens + 1) WHERE key_id = $1",
            key_id,
            float(per_minute),
        )
