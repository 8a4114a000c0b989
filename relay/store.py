"""The task store: SQLite through aiosqlite, behind a narrow interface.

All SQL of the relay lives in this module, so a PostgreSQL store for several relay processes can
later implement the same methods. One connection (one writer), WAL, `synchronous=FULL` (a task the
relay acknowledged survives a power cut), a busy timeout, and migrations as an ordered list of
named steps recorded in the `migrations` table.

Polling is claimed with short leases (`lease_owner`, `lease_until`), so two processes sharing one
database never refresh the same task at once, and terminal transitions are conditional updates
that succeed once.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_users_keys",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
            password_hash TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            prefix TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        """,
    ),
    (
        "0002_tasks",
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            channel TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            upstream_model TEXT NOT NULL,
            upstream_id TEXT,
            upstream_state TEXT NOT NULL DEFAULT '{}',
            request TEXT NOT NULL,
            prompt TEXT NOT NULL,
            seconds TEXT NOT NULL,
            size TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
            progress INTEGER NOT NULL DEFAULT 0,
            error_code TEXT,
            error_message TEXT,
            remixed_from TEXT,
            created_at INTEGER NOT NULL,
            submitted_at REAL,
            updated_at REAL NOT NULL,
            completed_at REAL,
            expires_at REAL,
            next_poll_at REAL,
            poll_interval REAL,
            poll_errors INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until REAL
        );
        CREATE INDEX tasks_by_owner ON tasks (owner, created_at, seq);
        CREATE INDEX tasks_by_time ON tasks (created_at, seq);
        CREATE INDEX tasks_due ON tasks (next_poll_at)
            WHERE status IN ('queued', 'in_progress');
        CREATE TABLE idempotency_keys (
            owner TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            task_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, key)
        );
        """,
    ),
    (
        "0003_webhook_outbox",
        """
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            created_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_error TEXT
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
        """,
    ),
)

ACTIVE = ("queued", "in_progress")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: int


@dataclass(frozen=True)
class ApiKey:
    id: int
    user: str
    role: str
    name: str
    prefix: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    url: str
    body: str
    attempts: int
    created_at: float


@dataclass(frozen=True)
class TaskRow:
    seq: int
    id: str
    owner: str
    channel: str
    provider: str
    model: str
    upstream_model: str
    upstream_id: str | None
    upstream_state: dict[str, Any]
    request: dict[str, Any]
    prompt: str
    seconds: str
    size: str
    status: str
    progress: int
    error_code: str | None
    error_message: str | None
    remixed_from: str | None
    created_at: int
    submitted_at: float | None
    updated_at: float
    completed_at: float | None
    expires_at: float | None
    next_poll_at: float | None
    poll_interval: float | None
    poll_errors: int
    lease_owner: str | None
    lease_until: float | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


_TASK_COLUMNS = [f.name for f in fields(TaskRow)]
_JSON_COLUMNS = {"upstream_state", "request"}


def _task(row: sqlite3.Row) -> TaskRow:
    values = {k: row[k] for k in _TASK_COLUMNS}
    for key in _JSON_COLUMNS:
        values[key] = orjson.loads(values[key])
    return TaskRow(**values)


def _encode(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if k in _JSON_COLUMNS else v for k, v in values.items()}


_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)


class _Connection:
    """The one aiosqlite connection, shared by every coroutine. A transaction holds the lock
    from BEGIN to COMMIT, so no other coroutine's statement lands inside it."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.lock = asyncio.Lock()

    async def execute(self, sql: str, params: Any = ()) -> aiosqlite.Cursor:
        if _in_transaction.get():
            return await self.db.execute(sql, params)
        async with self.lock:
            return await self.db.execute(sql, params)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> Iterable[sqlite3.Row]:
        if _in_transaction.get():
            return await self.db.execute_fetchall(sql, params)
        async with self.lock:
            return await self.db.execute_fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.lock:
            token = _in_transaction.set(True)
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    await self.db.execute("ROLLBACK")
                    raise
                await self.db.execute("COMMIT")
            finally:
                _in_transaction.reset(token)

    async def close(self) -> None:
        await self.db.close()


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = _Connection(db)

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA busy_timeout=5000",
            "PRAGMA foreign_keys=ON",
        ):
            await db.execute(pragma)
        store = cls(db)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def migrate(self) -> list[str]:
        """Apply the steps not yet recorded, each in one transaction; return their names."""
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS migrations"
            " (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in await self._db.execute_fetchall("SELECT name FROM migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            async with self._db.transaction():
                for statement in _statements(sql):
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (name, time.time()),
                )
            applied.append(name)
        return applied

    async def applied_migrations(self) -> list[str]:
        rows = await self._db.execute_fetchall("SELECT name FROM migrations ORDER BY name")
        return [row[0] for row in rows]

    async def pragma(self, name: str) -> Any:
        rows = list(await self._db.execute_fetchall(f"PRAGMA {name}"))
        return rows[0][0] if rows else None

    async def ping(self) -> None:
        await self._db.execute_fetchall("SELECT 1")

    # --- users and keys ----------------------------------------------------------------

    async def add_user(self, name: str, role: str, now: float) -> User:
        cur = await self._db.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)", (name, role, int(now))
        )
        assert cur.lastrowid is not None
        return User(cur.lastrowid, name, role, int(now))

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        await self._db.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, role, int(now)),
        )

    async def get_user(self, name: str) -> User | None:
        rows = await self._db.execute_fetchall(
            "SELECT id, name, role, created_at FROM users WHERE name = ?", (name,)
        )
        return User(*next(iter(rows))) if rows else None

    async def list_users(self) -> list[User]:
        rows = await self._db.execute_fetchall(
            "SELECT id, name, role, created_at FROM users ORDER BY name"
        )
        return [User(*row) for row in rows]

    async def add_key(self, user_id: int, name: str, prefix: str, sha256: str, now: float) -> int:
        cur = await self._db.execute(
            "INSERT INTO api_keys (user_id, name, prefix, sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, name, prefix, sha256, int(now)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def find_key(self, sha256: str) -> ApiKey | None:
        """The active key with this hash (lookup by the hash of the secret, never the secret)."""
        rows = await self._db.execute_fetchall(
            "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE k.sha256 = ? AND k.revoked_at IS NULL",
            (sha256,),
        )
        return ApiKey(*next(iter(rows))) if rows else None

    async def list_keys(self, user: str | None = None) -> list[ApiKey]:
        sql = (
            "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN users u ON u.id = k.user_id"
        )
        args: tuple[Any, ...] = ()
        if user is not None:
            sql += " WHERE u.name = ?"
            args = (user,)
        rows = await self._db.execute_fetchall(sql + " ORDER BY k.id", args)
        return [ApiKey(*row) for row in rows]

    async def revoke_key(self, key_id: int, now: float) -> bool:
        cur = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (int(now), key_id),
        )
        return cur.rowcount == 1

    async def count_active_keys(self) -> int:
        rows = await self._db.execute_fetchall(
            "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
        )
        return int(next(iter(rows))[0])

    # --- tasks -------------------------------------------------------------------------

    async def insert_task(self, values: Mapping[str, Any]) -> None:
        encoded = _encode(values)
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
        rows = await self._db.execute_fetchall(sql, args)
        return _task(next(iter(rows))) if rows else None

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
        return [_task(row) for row in rows]

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
        encoded = _encode(values)
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

    async def finish_task(
        self,
        task_id: str,
        values: Mapping[str, Any],
        *,
        lease_owner: str | None,
        deliveries: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """The one-time transition out of a running state, with its webhook deliveries written in
        the same transaction: a task that finished always has its events queued."""
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
        return done

    async def delete_task(self, task_id: str) -> bool:
        cur = await self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        await self._db.execute("DELETE FROM idempotency_keys WHERE task_id = ?", (task_id,))
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
        return sorted((_task(row) for row in rows), key=lambda t: t.next_poll_at or 0)

    async def next_due(self, now: float) -> float | None:
        """When the next poll falls due: a leased task counts from when its lease runs out."""
        rows = await self._db.execute_fetchall(
            "SELECT min(CASE WHEN lease_until > ? THEN lease_until ELSE next_poll_at END)"
            " FROM tasks WHERE status IN ('queued', 'in_progress') AND upstream_id IS NOT NULL",
            (now,),
        )
        value = next(iter(rows))[0]
        return float(value) if value is not None else None

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
        return [_task(row) for row in rows]

    async def overdue(self, created_before: float) -> list[TaskRow]:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM tasks WHERE status IN ('queued', 'in_progress')"
            " AND upstream_id IS NOT NULL AND created_at < ?",
            (created_before,),
        )
        return [_task(row) for row in rows]

    async def count_active_by_channel(self) -> dict[str, int]:
        rows = await self._db.execute_fetchall(
            "SELECT channel, count(*) FROM tasks WHERE status IN ('queued', 'in_progress')"
            " GROUP BY channel"
        )
        return {row[0]: int(row[1]) for row in rows}

    # --- webhook outbox ----------------------------------------------------------------

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
        rows = await self._db.execute_fetchall(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE lease_owner IS NULL"
        )
        value = next(iter(rows))[0]
        return float(value) if value is not None else None

    async def pending_deliveries(self) -> int:
        rows = await self._db.execute_fetchall("SELECT count(*) FROM webhook_deliveries")
        return int(next(iter(rows))[0])

    # --- idempotency -------------------------------------------------------------------

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


def _statements(sql: str) -> Iterable[str]:
    return (part.strip() for part in sql.split(";") if part.strip())


def column_names() -> Sequence[str]:
    return list(_TASK_COLUMNS)
