"""Tasks: rows, pages, leases, one-time transitions, idempotency keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import orjson

from relay.domain import TASK_FIELDS, Outcome, Task, task_from
from relay.store.rows import NewDelivery, NewTask
from relay.store.sqlite.connection import Part

JSON_COLUMNS = frozenset({"upstream_state", "request"})
# every task query names the columns in the Task's field order, so a row is read by position
# (a sqlite3.Row looks a name up by comparing it with each column name in turn)
COLUMNS = ", ".join(TASK_FIELDS)
_STATE = TASK_FIELDS.index("upstream_state")
_REQUEST = TASK_FIELDS.index("request")
_ACTIVE = "status IN ('queued', 'in_progress')"
_COUNT_STATUSES = ("queued", "in_progress", "completed", "failed")
_COUNT_BY_STATUS = (
    "SELECT count(*) FILTER (WHERE status = 'queued'),"
    " count(*) FILTER (WHERE status = 'in_progress'),"
    " count(*) FILTER (WHERE status = 'completed'),"
    " count(*) FILTER (WHERE status = 'failed') FROM tasks"
)
_CLAIM_DUE = (
    "UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE seq IN ("  # noqa: S608 (constants)
    " SELECT seq FROM tasks WHERE status IN ('queued', 'in_progress')"
    " AND upstream_id IS NOT NULL AND next_poll_at <= ?"
    " AND (lease_until IS NULL OR lease_until < ?)"
    " ORDER BY next_poll_at LIMIT ?) RETURNING " + COLUMNS
)


def task_of(row: sqlite3.Row) -> Task:
    """A row of `SELECT {COLUMNS}` as a Task."""
    values = list(row)
    values[_STATE] = orjson.loads(values[_STATE])
    values[_REQUEST] = orjson.loads(values[_REQUEST])
    return task_from(values)


def fold(text: str | None) -> str | None:
    """Case-folded text for a case-insensitive search (registered as SQL `relay_fold`)."""
    return text.casefold() if text is not None else None


def _encoded(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if k in JSON_COLUMNS else v for k, v in values.items()}


class Tasks(Part):
    # --- reading ----------------------------------------------------------------------------

    async def get_task(self, task_id: str, owner: str | None = None) -> Task | None:
        sql = f"SELECT {COLUMNS} FROM tasks WHERE id = ?"  # noqa: S608
        args: tuple[Any, ...] = (task_id,)
        if owner is not None:
            sql += " AND owner = ?"
            args += (owner,)
        row = await self._db.read_one(sql, args)
        return task_of(row) if row is not None else None

    async def list_tasks(
        self,
        *,
        owner: str | None,
        after: Task | None,
        limit: int,
        descending: bool,
        prompt_contains: str | None = None,
    ) -> list[Task]:
        clauses: list[str] = []
        args: list[Any] = []
        if owner is not None:
            clauses.append("owner = ?")
            args.append(owner)
        if prompt_contains:
            # instr, not LIKE: %, _ and \ in the search are plain characters
            clauses.append("instr(relay_fold(prompt), ?) > 0")
            args.append(prompt_contains.casefold())
        op = "<" if descending else ">"
        if after is not None:
            clauses.append(f"(created_at {op} ? OR (created_at = ? AND seq {op} ?))")
            args += [after.created_at, after.created_at, after.seq]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "created_at DESC, seq DESC" if descending else "created_at ASC, seq ASC"
        rows = await self._db.read_all(
            f"SELECT {COLUMNS} FROM tasks {where} ORDER BY {order} LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [task_of(row) for row in rows]

    async def count_active_by_channel(self) -> dict[str, int]:
        rows = await self._db.read_all(
            f"SELECT channel, count(*) FROM tasks WHERE {_ACTIVE} GROUP BY channel"  # noqa: S608
        )
        return {row[0]: int(row[1]) for row in rows}

    async def count_by_status(self) -> dict[str, int]:
        # One pass with no GROUP BY b-tree: 85 ms instead of 115-185 ms over 200,000 tasks (no
        # index holds the status; one would bring it to about 25 ms).
        rows = await self._db.execute_fetchall(_COUNT_BY_STATUS)
        return dict(zip(_COUNT_STATUSES, (int(n) for n in next(iter(rows))), strict=True))

    # --- writing: one method per thing that happens -------------------------------------------

    async def _set(
        self, task_id: str, values: Mapping[str, Any], *, active: bool, lease: str | None
    ) -> bool:
        encoded = _encoded(values)
        sets = ", ".join(f"{k} = :{k}" for k in encoded)
        sql = f"UPDATE tasks SET {sets} WHERE id = :_id"  # noqa: S608
        params = {**encoded, "_id": task_id}
        if active:
            sql += f" AND {_ACTIVE}"
        if lease is not None:
            sql += " AND lease_owner = :_lease"
            params["_lease"] = lease
        cur = await self._db.execute(sql, params)
        return cur.rowcount == 1

    async def _full(self, channel: str, limit: int) -> bool:
        if limit <= 0:
            return False
        rows = await self._db.execute_fetchall(
            f"SELECT count(*) FROM tasks WHERE channel = ? AND {_ACTIVE}",  # noqa: S608
            (channel,),
        )
        return int(next(iter(rows))[0]) >= limit

    async def create_task(self, task: NewTask, *, limit: int = 0) -> bool:
        values = {f.name: getattr(task, f.name) for f in fields(task)}
        values["created_at"] = int(task.created_at)
        values.update(status="queued", progress=0, updated_at=task.created_at, upstream_state={})
        encoded = _encoded(values)
        names = ", ".join(encoded)
        marks = ", ".join(f":{k}" for k in encoded)
        async with self._db.transaction():  # the count and the insert: one writer at a time
            if await self._full(task.channel, limit):
                return False
            await self._db.execute(f"INSERT INTO tasks ({names}) VALUES ({marks})", encoded)  # noqa: S608
        return True

    async def move_to_channel(
        self, task_id: str, *, channel: str, provider: str, upstream_model: str, limit: int = 0
    ) -> bool:
        async with self._db.transaction():
            if await self._full(channel, limit):
                return False
            await self._set(
                task_id,
                {"channel": channel, "provider": provider, "upstream_model": upstream_model},
                active=True,
                lease=None,
            )
        return True

    async def record_submitted(
        self,
        task_id: str,
        *,
        upstream_id: str,
        upstream_state: Mapping[str, Any],
        seconds: str,
        size: str,
        status: str,
        progress: int,
        now: float,
        next_poll_at: float,
        interval: float,
    ) -> Task | None:
        values = _encoded(
            {
                "upstream_id": upstream_id,
                "upstream_state": dict(upstream_state),
                "seconds": seconds,
                "size": size,
                "status": status,
                "progress": progress,
                "submitted_at": now,
                "updated_at": now,
                "next_poll_at": next_poll_at,
                "poll_interval": interval,
                "lease_owner": None,
                "lease_until": None,
            }
        )
        sets = ", ".join(f"{k} = :{k}" for k in values)
        rows = await self._db.execute_fetchall(
            f"UPDATE tasks SET {sets} WHERE id = :_id AND {_ACTIVE} RETURNING {COLUMNS}",  # noqa: S608
            {**values, "_id": task_id},
        )
        return next((task_of(row) for row in rows), None)

    async def record_poll(
        self,
        task_id: str,
        lease: str,
        *,
        status: str,
        progress: int,
        upstream_state: Mapping[str, Any] | None,
        seconds: str | None,
        size: str | None,
        now: float,
        next_poll_at: float,
        interval: float,
    ) -> bool:
        values: dict[str, Any] = {
            "status": status,
            "progress": progress,
            "updated_at": now,
            "poll_errors": 0,
            "next_poll_at": next_poll_at,
            "poll_interval": interval,
            "lease_owner": None,
            "lease_until": None,
        }
        _news(values, upstream_state, seconds, size)
        return await self._set(task_id, values, active=True, lease=lease)

    async def reschedule(
        self,
        task_id: str,
        lease: str,
        *,
        next_poll_at: float,
        interval: float,
        poll_errors: int | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "next_poll_at": next_poll_at,
            "poll_interval": interval,
            "lease_owner": None,
            "lease_until": None,
        }
        if poll_errors is not None:
            values["poll_errors"] = poll_errors
        return await self._set(task_id, values, active=True, lease=lease)

    async def finish(
        self,
        task_id: str,
        lease: str | None,
        outcome: Outcome,
        *,
        now: float,
        progress: int | None = None,
        upstream_state: Mapping[str, Any] | None = None,
        seconds: str | None = None,
        size: str | None = None,
        deliveries: Iterable[NewDelivery] = (),
        copies: Iterable[str] = (),
    ) -> Task | None:
        values: dict[str, Any] = {
            "status": outcome.status,
            "error_code": outcome.error_code,
            "error_message": outcome.error_message,
            "completed_at": outcome.completed_at or now,
            "expires_at": outcome.expires_at if outcome.status == "completed" else None,
            "updated_at": now,
            "next_poll_at": None,
            "lease_owner": None,
            "lease_until": None,
        }
        if outcome.status == "completed":
            values["progress"] = 100
        elif progress is not None:
            values["progress"] = progress
        _news(values, upstream_state, seconds, size)
        encoded = _encoded(values)
        sets = ", ".join(f"{k} = :{k}" for k in encoded)
        sql = f"UPDATE tasks SET {sets} WHERE id = :_id AND {_ACTIVE}"  # noqa: S608
        params = {**encoded, "_id": task_id}
        if lease is not None:
            sql += " AND lease_owner = :_lease"
            params["_lease"] = lease
        async with self._db.transaction():
            rows = list(await self._db.execute_fetchall(f"{sql} RETURNING {COLUMNS}", params))
            if not rows:
                return None
            for delivery in deliveries:
                await self._db.execute(
                    "INSERT INTO webhook_deliveries"
                    " (event_id, url, body, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
                    (delivery.event_id, delivery.url, delivery.body, now, now),
                )
            for variant in copies:
                await self._db.execute(
                    "INSERT INTO copies (task_id, variant, state, next_attempt_at, created_at)"
                    " VALUES (?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                    (task_id, variant, now, now),
                )
        return task_of(rows[0])

    async def delete_task(self, task_id: str) -> bool:
        async with self._db.transaction():
            cur = await self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            await self._db.execute("DELETE FROM idempotency_keys WHERE task_id = ?", (task_id,))
            await self._db.execute("DELETE FROM copies WHERE task_id = ?", (task_id,))
        return cur.rowcount == 1

    # --- polling --------------------------------------------------------------------------

    async def claim_due(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Task]:
        rows = await self._db.execute_fetchall(
            _CLAIM_DUE,
            (lease_owner, now + lease_s, now, now, limit),
        )
        return sorted((task_of(row) for row in rows), key=lambda t: t.next_poll_at or 0)

    async def next_due(self, now: float) -> float | None:
        row = await self._db.read_one(
            f"SELECT next_poll_at FROM tasks WHERE {_ACTIVE}"  # noqa: S608
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

    async def stale_submissions(self, now: float) -> list[Task]:
        rows = await self._db.read_all(
            f"SELECT {COLUMNS} FROM tasks WHERE status = 'queued' AND upstream_id IS NULL"  # noqa: S608
            " AND (lease_until IS NULL OR lease_until < ?)",
            (now,),
        )
        return [task_of(row) for row in rows]

    async def overdue(self, created_before: float) -> list[Task]:
        rows = await self._db.read_all(
            f"SELECT {COLUMNS} FROM tasks WHERE {_ACTIVE}"  # noqa: S608
            " AND upstream_id IS NOT NULL AND created_at < ?",
            (created_before,),
        )
        return [task_of(row) for row in rows]

    # --- idempotency keys -------------------------------------------------------------------

    async def find_idempotency_key(
        self, owner: str, key: str, newer_than: float
    ) -> tuple[str, str] | None:
        rows = await self._db.read_all(
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


def _news(
    values: dict[str, Any],
    upstream_state: Mapping[str, Any] | None,
    seconds: str | None,
    size: str | None,
) -> None:
    """What a poll learned beyond the status: the adapter's state, the produced size/duration."""
    if upstream_state is not None:
        values["upstream_state"] = dict(upstream_state)
    if seconds:
        values["seconds"] = seconds
    if size:
        values["size"] = size
