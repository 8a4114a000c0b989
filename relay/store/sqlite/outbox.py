"""Work queued in the database for background workers: webhook deliveries, copies."""

from __future__ import annotations

from relay.store.rows import COPY_COLUMNS, Copy, Delivery
from relay.store.sqlite.connection import Part

_CLAIM_COPIES = (
    "UPDATE copies SET lease_owner = ?, lease_until = ? WHERE rowid IN ("  # noqa: S608 (constants only)
    " SELECT rowid FROM copies WHERE state = 'pending' AND next_attempt_at <= ?"
    " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?)"
    " RETURNING " + COPY_COLUMNS
)


class Outbox(Part):
    async def claim_deliveries(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Delivery]:
        rows = await self._db.execute_fetchall(
            "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE id IN ("
            " SELECT id FROM webhook_deliveries WHERE next_attempt_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?)"
            " RETURNING id, event_id, url, body, attempts, created_at",
            (lease_owner, now + lease_s, now, now, limit),
        )
        return sorted((Delivery(*row) for row in rows), key=lambda d: d.id)

    async def delivered(self, delivery_id: int) -> None:
        await self._db.execute("DELETE FROM webhook_deliveries WHERE id = ?", (delivery_id,))

    async def retry_delivery(self, delivery_id: int, at: float, error: str) -> None:
        await self._db.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?,"
            " last_error = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
            (at, error, delivery_id),
        )

    async def next_delivery_at(self) -> float | None:
        rows = await self._db.read_all(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE lease_owner IS NULL"
        )
        value = next(iter(rows))[0]
        return float(value) if value is not None else None

    async def claim_copies(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Copy]:
        rows = await self._db.execute_fetchall(
            _CLAIM_COPIES, (lease_owner, now + lease_s, now, now, limit)
        )
        return [Copy(*row) for row in rows]

    async def next_copy_at(self) -> float | None:
        rows = await self._db.read_all(
            "SELECT min(next_attempt_at) FROM copies WHERE state = 'pending'"
            " AND lease_owner IS NULL"
        )
        value = next(iter(rows))[0]
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
        async with self._db.transaction():
            cur = await self._db.execute(
                "UPDATE copies SET state = 'stored', path = ?, content_type = ?, bytes = ?,"
                " stored_at = ?, lease_owner = NULL, lease_until = NULL, last_error = NULL"
                " WHERE task_id = ? AND variant = ? AND state = 'pending'",
                (path, content_type, size, now, task_id, variant),
            )
            if cur.rowcount != 1:
                return False
            if variant == "video":
                await self._db.execute(
                    "UPDATE tasks SET expires_at = NULL WHERE id = ?", (task_id,)
                )
        return True

    async def release_copy_leases(self, lease_owner: str) -> None:
        await self._db.execute(
            "UPDATE copies SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (lease_owner,),
        )

    async def retry_copy(self, task_id: str, variant: str, at: float, error: str) -> None:
        await self._db.execute(
            "UPDATE copies SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE task_id = ? AND variant = ?",
            (at, error, task_id, variant),
        )

    async def drop_copy(self, task_id: str, variant: str) -> None:
        await self._db.execute(
            "DELETE FROM copies WHERE task_id = ? AND variant = ?", (task_id, variant)
        )

    async def stored_copy(self, task_id: str, variant: str) -> Copy | None:
        rows = await self._db.read_all(
            f"SELECT {COPY_COLUMNS} FROM copies"  # noqa: S608
            " WHERE task_id = ? AND variant = ? AND state = 'stored'",
            (task_id, variant),
        )
        for row in rows:
            return Copy(*row)
        return None

    async def stored_copies_oldest_first(self, limit: int) -> list[Copy]:
        rows = await self._db.read_all(
            f"SELECT {COPY_COLUMNS} FROM copies WHERE state = 'stored'"  # noqa: S608
            " ORDER BY stored_at LIMIT ?",
            (limit,),
        )
        return [Copy(*row) for row in rows]

    async def stored_bytes(self) -> int:
        rows = await self._db.read_all(
            "SELECT coalesce(sum(bytes), 0) FROM copies WHERE state = 'stored'"
        )
        return int(next(iter(rows))[0])

    async def forget_copy(self, copy: Copy, expired_at: float) -> None:
        """Retention removed a stored copy: the content is no longer the relay's to serve."""
        async with self._db.transaction():
            await self._db.execute(
                "DELETE FROM copies WHERE task_id = ? AND variant = ?",
                (copy.task_id, copy.variant),
            )
            if copy.variant == "video":
                await self._db.execute(
                    "UPDATE tasks SET expires_at = ? WHERE id = ?", (expired_at, copy.task_id)
                )
