"""Tasks: rows, pages, leases, one-time transitions, idempotency keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import asyncpg

from relay.domain import TASK_FIELDS, Outcome, Task, task_from
from relay.store.postgres.connection import Args, Part, affected
from relay.store.rows import NewDelivery, NewTask

_ACTIVE = "status IN ('queued', 'in_progress')"
_FREE = "(lease_until IS NULL OR lease_until < $1)"  # nobody holds it at time $1
# The lease: rows nobody holds are locked with SKIP LOCKED (another instance claiming at the same
# moment takes other rows instead of waiting for these), then their due time is pushed out to
# lease_until. A row locked by a claim that commits meanwhile is re-checked against its new
# version, whose lease excludes it: one claim per row, whichever instance asks.
_CLAIM_DUE = (
    "WITH due AS ("  # noqa: S608 (constants only)
    f" SELECT seq FROM tasks WHERE {_ACTIVE} AND upstream_id IS NOT NULL"
    f" AND next_poll_at <= $1 AND {_FREE}"
    " ORDER BY next_poll_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " UPDATE tasks SET lease_owner = $2, lease_until = $3 FROM due"
    " WHERE tasks.seq = due.seq RETURNING tasks.*"
)


_MOVE = (
    "UPDATE tasks SET channel = $2, provider = $3, upstream_model = $4"
    " WHERE id = $1 AND status IN ('queued', 'in_progress')"
)


def task_of(row: asyncpg.Record) -> Task:
    return task_from(row[k] for k in TASK_FIELDS)


class Tasks(Part):
    # --- reading ----------------------------------------------------------------------------

    async def get_task(self, task_id: str, owner: str | None = None) -> Task | None:
        if owner is None:
            row = await self._pool.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
        else:
            row = await self._pool.fetchrow(
                "SELECT * FROM tasks WHERE id = $1 AND owner = $2", task_id, owner
            )
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
        args = Args()
        clauses: list[str] = []
        if owner is not None:
            clauses.append(f"owner = {args(owner)}")
        if prompt_contains:
            # strpos, not LIKE: %, _ and \ in the search are plain characters
            clauses.append(f"strpos(lower(prompt), lower({args(prompt_contains)})) > 0")
        op = "<" if descending else ">"
        if after is not None:
            at = args(after.created_at)
            clauses.append(
                f"(created_at {op} {at} OR (created_at = {at} AND seq {op} {args(after.seq)}))"
            )
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "created_at DESC, seq DESC" if descending else "created_at ASC, seq ASC"
        rows = await self._pool.fetch(
            f"SELECT * FROM tasks {where} ORDER BY {order} LIMIT {args(limit)}",  # noqa: S608
            *args.values,
        )
        return [task_of(row) for row in rows]

    async def count_active_by_channel(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            f"SELECT channel, count(*) FROM tasks WHERE {_ACTIVE} GROUP BY channel"  # noqa: S608
        )
        return {row[0]: int(row[1]) for row in rows}

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT status, count(*) FROM tasks GROUP BY status")
        return {row[0]: int(row[1]) for row in rows}

    # --- writing: one method per thing that happens -------------------------------------------

    async def _set(
        self, task_id: str, values: Mapping[str, Any], *, active: bool, lease: str | None
    ) -> bool:
        args = Args()
        sets = ", ".join(f"{k} = {args(v)}" for k, v in values.items())
        sql = f"UPDATE tasks SET {sets} WHERE id = {args(task_id)}"  # noqa: S608
        if active:
            sql += f" AND {_ACTIVE}"
        if lease is not None:
            sql += f" AND lease_owner = {args(lease)}"
        return affected(await self._pool.execute(sql, *args.values)) == 1

    @staticmethod
    async def _full(con: asyncpg.Connection, channel: str, limit: int) -> bool:
        """Whether the channel runs `limit` tasks already. The advisory lock (one per channel,
        held until the transaction ends) makes every relay's count-then-write for a channel
        take turns, so max_in_flight holds across relays."""
        if limit <= 0:
            return False
        await con.execute("SELECT pg_advisory_xact_lock(hashtext('relay-slots:' || $1))", channel)
        count = await con.fetchval(
            f"SELECT count(*) FROM tasks WHERE channel = $1 AND {_ACTIVE}",  # noqa: S608
            channel,
        )
        return int(count) >= limit

    async def create_task(self, task: NewTask, *, limit: int = 0) -> bool:
        values = {f.name: getattr(task, f.name) for f in fields(task)}
        values["created_at"] = int(task.created_at)
        values.update(status="queued", progress=0, updated_at=task.created_at, upstream_state={})
        args = Args()
        marks = ", ".join(args(v) for v in values.values())
        async with self._pool.acquire() as con, con.transaction():
            if await self._full(con, task.channel, limit):
                return False
            await con.execute(
                f"INSERT INTO tasks ({', '.join(values)}) VALUES ({marks})",  # noqa: S608
                *args.values,
            )
        return True

    async def move_to_channel(
        self, task_id: str, *, channel: str, provider: str, upstream_model: str, limit: int = 0
    ) -> bool:
        async with self._pool.acquire() as con, con.transaction():
            if await self._full(con, channel, limit):
                return False
            await con.execute(
                _MOVE,
                task_id,
                channel,
                provider,
                upstream_model,
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
        values = {
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
        args = Args()
        sets = ", ".join(f"{k} = {args(v)}" for k, v in values.items())
        row = await self._pool.fetchrow(
            f"UPDATE tasks SET {sets} WHERE id = {args(task_id)} AND {_ACTIVE}"  # noqa: S608
            " RETURNING *",
            *args.values,
        )
        if row is None:
            return None
        await self._pool.execute("SELECT pg_notify('relay', 'due')")  # any relay may poll it
        return task_of(row)

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
        args = Args()
        sets = ", ".join(f"{k} = {args(v)}" for k, v in values.items())
        # the fence: only a running task, and only by its lease holder when a lease is given;
        # a second finisher waits for the first one's row lock, then matches nothing
        sql = f"UPDATE tasks SET {sets} WHERE id = {args(task_id)} AND {_ACTIVE}"  # noqa: S608
        if lease is not None:
            sql += f" AND lease_owner = {args(lease)}"
        async with self._pool.acquire() as con, con.transaction():
            row = await con.fetchrow(sql + " RETURNING *", *args.values)
            if row is None:
                return None
            events = [(d.event_id, d.url, d.body, now, now) for d in deliveries]
            if events:
                await con.executemany(
                    "INSERT INTO webhook_deliveries"
                    " (event_id, url, body, next_attempt_at, created_at)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    events,
                )
            jobs = [(task_id, variant, now) for variant in copies]
            if jobs:
                await con.executemany(
                    "INSERT INTO copies (task_id, variant, state, next_attempt_at, created_at)"
                    " VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT DO NOTHING",
                    jobs,
                )
            if events or jobs:  # told at commit: any relay's sender and copier start at once
                await con.execute("SELECT pg_notify('relay', 'finished')")
        return task_of(row)

    async def delete_task(self, task_id: str) -> bool:
        async with self._pool.acquire() as con, con.transaction():
            tag = await con.execute("DELETE FROM tasks WHERE id = $1", task_id)
            await con.execute("DELETE FROM idempotency_keys WHERE task_id = $1", task_id)
            await con.execute("DELETE FROM copies WHERE task_id = $1", task_id)
        return affected(tag) == 1

    # --- polling --------------------------------------------------------------------------

    async def claim_due(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Task]:
        rows = await self._pool.fetch(_CLAIM_DUE, now, lease_owner, now + lease_s, limit)
        return sorted((task_of(row) for row in rows), key=lambda t: t.next_poll_at or 0)

    async def next_due(self, now: float) -> float | None:
        value = await self._pool.fetchval(
            f"SELECT min(next_poll_at) FROM tasks WHERE {_ACTIVE}"  # noqa: S608
            f" AND upstream_id IS NOT NULL AND {_FREE}",
            now,
        )
        return float(value) if value is not None else None

    async def release_leases(self, lease_owner: str) -> None:
        await self._pool.execute(
            "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            lease_owner,
        )

    async def stale_submissions(self, now: float) -> list[Task]:
        rows = await self._pool.fetch(
            f"SELECT * FROM tasks WHERE status = 'queued' AND upstream_id IS NULL AND {_FREE}"  # noqa: S608
            " ORDER BY seq",
            now,
        )
        return [task_of(row) for row in rows]

    async def overdue(self, created_before: float) -> list[Task]:
        rows = await self._pool.fetch(
            f"SELECT * FROM tasks WHERE {_ACTIVE}"  # noqa: S608
            " AND upstream_id IS NOT NULL AND created_at < $1::double precision ORDER BY seq",
            created_before,
        )
        return [task_of(row) for row in rows]

    # --- idempotency keys -------------------------------------------------------------------

    async def find_idempotency_key(
        self, owner: str, key: str, newer_than: float
    ) -> tuple[str, str] | None:
        row = await self._pool.fetchrow(
            "SELECT request_hash, task_id FROM idempotency_keys"
            " WHERE owner = $1 AND key = $2 AND created_at >= $3",
            owner,
            key,
            newer_than,
        )
        return (str(row[0]), str(row[1])) if row is not None else None

    async def claim_idempotency_key(
        self, owner: str, key: str, request_hash: str, task_id: str, now: float, ttl_s: float
    ) -> bool:
        # one statement: a new key is inserted, an expired one taken over, a live one kept;
        # two instances claiming one key at once get one True between them
        row = await self._pool.fetchrow(
            "INSERT INTO idempotency_keys (owner, key, request_hash, task_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, key) DO UPDATE"
            " SET request_hash = excluded.request_hash, task_id = excluded.task_id,"
            " created_at = excluded.created_at WHERE idempotency_keys.created_at < $6"
            " RETURNING 1",
            owner,
            key,
            request_hash,
            task_id,
            now,
            now - ttl_s,
        )
        return row is not None

    async def forget_idempotency_key(self, owner: str, key: str) -> None:
        await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2", owner, key
        )

    async def purge_idempotency_keys(self, older_than: float) -> None:
        await self._pool.execute("DELETE FROM idempotency_keys WHERE created_at < $1", older_than)


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
