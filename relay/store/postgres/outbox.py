"""Work queued in the database for background workers: webhook deliveries, copies. Both are
claimed like polls: rows nobody holds, locked with SKIP LOCKED, leased until a time."""

from __future__ import annotations

from relay.store.postgres.connection import Part, affected
from relay.store.rows import COPY_COLUMNS, Copy, Delivery

_CLAIM_DELIVERIES = (
    "WITH due AS ("
    " SELECT id FROM webhook_deliveries WHERE next_attempt_at <= $1"
    " AND (lease_until IS NULL OR lease_until < $1)"
    " ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " UPDATE webhook_deliveries d SET lease_owner = $2, lease_until = $3 FROM due"
    " WHERE d.id = due.id RETURNING d.id, d.event_id, d.url, d.body, d.attempts, d.created_at"
)
_CLAIM_COPIES = (
    "WITH due AS ("  # noqa: S608 (constants only)
    " SELECT task_id, variant FROM copies WHERE state = 'pending' AND next_attempt_at <= $1"
    " AND (lease_until IS NULL OR lease_until < $1)"
    " ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " UPDATE copies c SET lease_owner = $2, lease_until = $3 FROM due"
    " WHERE c.task_id = due.task_id AND c.variant = due.variant"
    " RETURNING " + ", ".join(f"c.{name.strip()}" for name in COPY_COLUMNS.split(","))
)


class Outbox(Part):
    async def claim_deliveries(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Delivery]:
        rows = await self._pool.fetch(_CLAIM_DELIVERIES, now, lease_owner, now + lease_s, limit)
        return sorted((Delivery(*row) for row in rows), key=lambda d: d.id)

    async def delivered(self, delivery_id: int) -> None:
        await self._pool.execute("DELETE FROM webhook_deliveries WHERE id = $1", delivery_id)

    async def retry_delivery(self, delivery_id: int, at: float, error: str) -> None:
        await self._pool.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1,"
            " last_error = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3",
            at,
            error,
            delivery_id,
        )

    async def next_delivery_at(self) -> float | None:
        value = await self._pool.fetchval(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE lease_owner IS NULL"
        )
        return float(value) if value is not None else None

    async def claim_copies(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Copy]:
        rows = await self._pool.fetch(_CLAIM_COPIES, now, lease_owner, now + lease_s, limit)
        return sorted((Copy(*row) for row in rows), key=lambda c: (c.created_at, c.task_id))

    async def next_copy_at(self) -> float | None:
        value = await self._pool.fetchval(
            "SELECT min(next_attempt_at) FROM copies WHERE state = 'pending'"
            " AND lease_owner IS NULL"
        )
        return float(value) if value is not None else None

    async def copy_stored(
        self,
        task_id: str,
        variant: str,
        *,
        path: str,
        content_type: str,
        size: int,
        now: float,
    ) -> bool:
        """Record a finished copy (a stored video means the content no longer expires); False
        when the task or its job is gone meanwhile (deleted), so the file is an orphan."""
        async with self._pool.acquire() as con, con.transaction():
            tag = await con.execute(
                "UPDATE copies SET state = 'stored', path = $1, content_type = $2, bytes = $3,"
                " stored_at = $4, lease_owner = NULL, lease_until = NULL, last_error = NULL"
                " WHERE task_id = $5 AND variant = $6 AND state = 'pending'",
                path,
                content_type,
                size,
                now,
                task_id,
                variant,
            )
            if affected(tag) != 1:
                return False
            if variant == "video":
                await con.execute("UPDATE tasks SET expires_at = NULL WHERE id = $1", task_id)
        return True

    async def release_copy_leases(self, lease_owner: str) -> None:
        await self._pool.execute(
            "UPDATE copies SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            lease_owner,
        )

    async def retry_copy(self, task_id: str, variant: str, at: float, error: str) -> None:
        await self._pool.execute(
            "UPDATE copies SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2,"
            " lease_owner = NULL, lease_until = NULL WHERE task_id = $3 AND variant = $4",
            at,
            error,
            task_id,
            variant,
        )

    async def drop_copy(self, task_id: str, variant: str) -> None:
        await self._pool.execute(
            "DELETE FROM copies WHERE task_id = $1 AND variant = $2", task_id, variant
        )

    async def stored_copy(self, task_id: str, variant: str) -> Copy | None:
        row = await self._pool.fetchrow(
            f"SELECT {COPY_COLUMNS} FROM copies"  # noqa: S608
            " WHERE task_id = $1 AND variant = $2 AND state = 'stored'",
            task_id,
            variant,
        )
        return Copy(*row) if row is not None else None

    async def stored_copies_oldest_first(self, limit: int) -> list[Copy]:
        rows = await self._pool.fetch(
            f"SELECT {COPY_COLUMNS} FROM copies WHERE state = 'stored'"  # noqa: S608
            " ORDER BY stored_at LIMIT $1",
            limit,
        )
        return [Copy(*row) for row in rows]

    async def stored_bytes(self) -> int:
        value = await self._pool.fetchval(
            "SELECT coalesce(sum(bytes), 0) FROM copies WHERE state = 'stored'"
        )
        return int(value)

    async def forget_copy(self, copy: Copy, expired_at: float) -> None:
        """Retention removed a stored copy: the content is no longer the relay's to serve."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute(
                "DELETE FROM copies WHERE task_id = $1 AND variant = $2",
                copy.task_id,
                copy.variant,
            )
            if copy.variant == "video":
                await con.execute(
                    "UPDATE tasks SET expires_at = $1 WHERE id = $2", expired_at, copy.task_id
                )
