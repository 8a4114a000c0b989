"""The SQLite store: one writer connection (WAL, `synchronous=FULL`, a busy timeout) and a
read-only connection for one-row lookups; migrations as named steps in the `migrations` table.

A task the relay acknowledged survives a power cut: every write commits before the relay answers.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiosqlite

from relay.store.buckets import Buckets
from relay.store.sqlite.accounts import Accounts
from relay.store.sqlite.connection import Connection
from relay.store.sqlite.outbox import Outbox
from relay.store.sqlite.schema import MIGRATIONS, statements
from relay.store.sqlite.sessions import Sessions
from relay.store.sqlite.shared import Shared
from relay.store.sqlite.tasks import Tasks, fold

BUSY_TIMEOUT_MS = 5000


class SqliteStore(Accounts, Sessions, Tasks, Outbox, Shared):
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = Connection(db)
        self.path = path
        self._buckets = Buckets()

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
                "PRAGMA foreign_keys=ON",
            ):
                await db.execute(pragma)
            # SQLite's own lower() folds ASCII only; a prompt search folds like Python does
            await db.create_function("relay_fold", 1, fold, deterministic=True)
            store = cls(db, path)
            await store.migrate()
            reader = sqlite3.connect(path, isolation_level=None)
        except BaseException:
            await db.close()
            raise
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only=ON")
        reader.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        store._db.reader = reader
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
                for statement in statements(sql):
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (name, time.time()),
                )
            applied.append(name)
        return applied

    async def ping(self) -> None:
        await self._db.execute_fetchall("SELECT 1")
