"""The SQLite store: one writer connection (WAL, `synchronous=FULL`), read-only connections
beside it so reads never wait for a write, and migrations as named steps in the `migrations`
table.

A task the relay acknowledged survives a power cut: every write commits before the relay answers.
A write waits for the database at most `WRITE_BUDGET_S` in all (behind this process's other
writes and another process's lock), then fails with `StorageUnavailable`, as does a write on a
full disk (connection.py). Opening runs `PRAGMA quick_check` first and refuses a damaged file
(maintenance.py).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiosqlite

from relay.store.buckets import Buckets
from relay.store.sqlite.accounts import Accounts
from relay.store.sqlite.connection import (
    BUSY_SLICE_MS,
    LOOKUP_BUSY_MS,
    READ_BUSY_MS,
    WRITE_BUDGET_S,
    Connection,
)
from relay.store.sqlite.maintenance import DatabaseDamaged, is_damage, quick_check
from relay.store.sqlite.outbox import Outbox
from relay.store.sqlite.schema import MIGRATIONS, statements
from relay.store.sqlite.sessions import Sessions
from relay.store.sqlite.shared import Shared
from relay.store.sqlite.tasks import Tasks, fold

__all__ = ["WRITE_BUDGET_S", "DatabaseDamaged", "SqliteStore"]


class SqliteStore(Accounts, Sessions, Tasks, Outbox, Shared):
    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self.path = connection.path
        self._buckets = Buckets()

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        connection = Connection(db, path)
        try:
            db.row_factory = sqlite3.Row
            try:
                await quick_check(db, path)
                for pragma in (
                    "PRAGMA journal_mode=WAL",
                    "PRAGMA synchronous=FULL",
                    f"PRAGMA busy_timeout={BUSY_SLICE_MS}",
                    "PRAGMA foreign_keys=ON",
                ):
                    await db.execute(pragma)
                # SQLite's own lower() folds ASCII only; a prompt search folds as Python does
                await db.create_function("relay_fold", 1, fold, deterministic=True)
            except sqlite3.DatabaseError as exc:
                if is_damage(exc):  # not a database at all: quick_check cannot even start
                    raise DatabaseDamaged(path, str(exc)) from None
                raise
            store = cls(connection)
            await store.migrate()
            lookup = sqlite3.connect(path, isolation_level=None, timeout=LOOKUP_BUSY_MS / 1000)
            connection.lookup = lookup
            lookup.row_factory = sqlite3.Row
            lookup.execute("PRAGMA query_only=ON")
            reads = await aiosqlite.connect(path, isolation_level=None, timeout=READ_BUSY_MS / 1000)
            connection.reads = reads
            reads.row_factory = sqlite3.Row
            await reads.execute("PRAGMA query_only=ON")
            await reads.create_function("relay_fold", 1, fold, deterministic=True)
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def migrate(self) -> list[str]:
        """Apply the steps not yet recorded, each in one transaction; return their names."""
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS migrations"
            " (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in await self._db.read_all("SELECT name FROM migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            async with self._db.transaction():
                for statement in statements(sql):
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (name, time.time()),
                )
            applied.append(name)
        return applied

    async def ping(self) -> None:
        """Read the database on the lookup connection: never behind a write, this process's or
        another's, so a health check answers at once while the write lock is held elsewhere."""
        await self._db.read_one("SELECT name FROM migrations LIMIT 1")
