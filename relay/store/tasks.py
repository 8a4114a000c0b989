"""Tasks: rows, pages, leases, one-time transitions, idempotency keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relay.store.connection import Part
from relay.store.rows import TaskRow, encode, task_row


class Tasks(Part):
    async def insert_task(self, values: Mapping[str, Any]) -> None:
        encoded = encode(values)
        names = ", ".join(encoded)
        marks = ", ".join(f":{k}" for k in encoded)
        await self._db.execute(f"INSERT INTO tasks ({names}) VALUES ({marks})", encoded)  # noqa: S608

    async def get_task(self, task_id: str, owner: str | None = None) -> TaskRow | None:
        """A task by public id; with `owner`, only if it belongs to that user."""
        sql = "SELECT * FROM tasks WHERE id = ?"
        args: tuple[Any, ...] = (task_id,)
        if owner is not None:
            sql += " AND owner = ?"
            args += (owner,)
        row = await self._db.read_one(sql, args)
        return task_row(row) if row is not None else None

    async def list_tasks(
        self,
        *,
        owner: str | None,
        after: TaskRow | None,
        limit: int,
        descending: bool,
    ) -> list[TaskRow]:
        """A page in created_at order; ties go by creation sequence in the same direction, so
        "newest first" holds inside one second too. `owner=None` means everyone's."""
        clauses: list[str] = []
        args: list[Any] = []
        if owner is not None:
            clauses.append("owner = ?")
            args.append(owner)
        op = "<" if descending else ">"
        if after is not None:
            clauses.append(f"(created_at {op} ? OR (created_at = ? AND seq {op} ?))")
            args += [after.created_at, after.created_at, after.seq]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "created_at DESC, seq DESC" if descending else "created_at ASC, seq ASC"
        rows = await self._db.execute_fetchall(
            f"SELECT * FROM tasks {where} ORDER BY {order} LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [task_row(row) for row in rows]

    async def update_task(
        self,
        task_id: str,
        values: Mapping[str, Any],
        *,
        only_active: bool = False,
        lease_owner: str | None = None,
    ) -> bool:
        """Set columns on a task. `only_active` makes it a transition out of a running state:
        it succeeds for one caller only. `lease_owner` requires the caller to hold the lease."""
        encoded = encode(values)
        sets = ", ".join(f"{k} = :{k}" for k in encoded)
        sql = f"UPDATE tasks SET {sets} WHERE id = :_id"  # noqa: S608
        params = {**encoded, "_id": task_id}
        if only_active:
            sql += " AND status IN ('queued', 'in_progress')"
        if lease_owner is not None:
            sql += " AND lease_owner = :_lease"
            params["_lease"] = lease_owner
        cur = await self._db.execute(sql, params)
        return cur.rowcount == 1

    async def update_and_get(self, task_id: str, values: Mapping[str, Any]) -> TaskRow | None:
        """Set columns and return the row as it now is, in one statement."""
        encoded = encode(values)
        sets = ", ".join(f"{k} = :{k}" for k in encoded)
        rows = await self._db.execute_fetchall(
            f"UPDATE tasks SET {sets} WHERE id = :_id RETURNING *",  # noqa: S608
            {**encoded, "_id": task_id},
        )
        for row in rows:
            return task_row(row)
        return None

    async def finish_task(
        self,
        task_id: str,
        values: Mapping[str, Any],
        *,
        lease_owner: str | None,
        deliveries: Iterable[Mapping[str, Any]] = (),
        copies: Iterable[str] = (),
        now: float = 0.0,
    ) -> bool:
        """The one-time transition out of a running state, with its webhook deliveries and copy
        jobs written in the same transaction: a task that finished always has them queued."""
        async with self._db.transaction():
            done = await self.update_task(
                task_id, values, only_active=True, lease_owner=lease_owner
            )
            if done:
                for delivery in deliveries:
                    await self._db.execute(
                        "INSERT INTO webhook_deliveries"
                        " (event_id, url, body, next_attempt_at, created_at)"
                        " VALUES (:event_id, :url, :body, :next_attempt_at, :created_at)",
                        dict(delivery),
                    )
                for variant in copies:
                    await self._db.execute(
                        "INSERT INTO copies (task_id, variant, state, next_attempt_at, created_at)"
                        " VALUES (?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                        (task_id, variant, now, now),
                    )
        return done

    async def delete_task(self, task_id: str) -> bool:
        async with self._db.transaction():
            cur = await self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            await self._db.execute("DELETE FROM idempotency_keys WHERE task_id = ?", (task_id,))
            await self._db.execute("DELETE FROM copies WHERE task_id = ?", (task_id,))
        return cur.rowcount == 1

    async def claim_due(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[TaskRow]:
        """Lease up to `limit` submitted, running tasks whose next poll is due."""
        rows = await self._db.execute_fetchall(
            "UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE seq IN ("
            " SELECT seq FROM tasks WHERE status IN ('queued', 'in_progress')"
            " AND upstream_id IS NOT NULL AND next_poll_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)"
            " ORDER BY next_poll_at LIMIT ?) RETURNING *",
            (lease_owner, now + lease_s, now, now, limit),
        )
        return sorted((task_row(row) for row in rows), key=lambda t: t.next_poll_at or 0)

    async def next_due(self, now: float) -> float | None:
        """When the next unleased poll falls due (a walk of the due index, not of every task;
        leased tasks are the poller's own, or come back within its one-second sleep cap)."""
        row = await self._db.read_one(
            "SELECT next_poll_at FROM tasks WHERE status IN ('queued', 'in_progress')"
            " AND upstream_id IS NOT NULL AND next_poll_at IS NOT NULL"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_poll_at LIMIT 1",
            (now,),
        )
        return float(row[0]) if row is not None else None

    async def release_leases(self, lease_owner: str) -> None:
        await self._db.execute(
            "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (lease_owner,),
        )

    async def stale_submissions(self, now: float) -> list[TaskRow]:
        """Tasks whose submit never finished: no upstream id, and the submitter's lease ran out."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM tasks WHERE status = 'queued' AND upstream_id IS NULL"
            " AND (lease_until IS NULL OR lease_until < ?)",
            (now,),
        )
        return [task_row(row) for row in rows]

    async def overdue(self, created_before: float) -> list[TaskRow]:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM tasks WHERE status IN ('queued', 'in_progress')"
            " AND upstream_id IS NOT NULL AND created_at < ?",
            (created_before,),
        )
        return [task_row(row) for row in rows]

    async def count_active_by_channel(self) -> dict[str, int]:
        rows = await self._db.execute_fetchall(
            "SELECT channel, count(*) FROM tasks WHERE status IN ('queued', 'in_progress')"
            " GROUP BY channel"
        )
        return {row[0]: int(row[1]) for row in rows}

    async def find_idempotency_key(
        self, owner: str, key: str, newer_than: float
    ) -> tuple[str, str] | None:
        """(request hash, task id) of this caller's key, if recorded after `newer_than`."""
        rows = await self._db.execute_fetchall(
            "SELECT request_hash, task_id FROM idempotency_keys"
            " WHERE owner = ? AND key = ? AND created_at >= ?",
            (owner, key, newer_than),
        )
        for row in rows:
            return str(row[0]), str(row[1])
        return None

    async def claim_idempotency_key(
        self, owner: str, key: str, request_hash: str, task_id: str, now: float, ttl_s: float
    ) -> bool:
        """Record (owner, key) -> task id; False when a live entry holds the key already."""
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND created_at < ?",
            (owner, key, now - ttl_s),
        )
        cur = await self._db.execute(
            "INSERT INTO idempotency_keys (owner, key, request_hash, task_id, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, key) DO NOTHING",
            (owner, key, request_hash, task_id, now),
        )
        return cur.rowcount == 1

    async def forget_idempotency_key(self, owner: str, key: str) -> None:
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE owner = ? AND key = ?", (owner, key)
        )

    async def purge_idempotency_keys(self, older_than: float) -> None:
        await self._db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (older_than,))
