"""The Store: one object, its parts by subject, behind the narrow interface the relay uses."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite

from relay.store.accounts import Accounts
from relay.store.connection import Connection
from relay.store.outbox import Outbox
from relay.store.schema import MIGRATIONS, statements
from relay.store.tasks import Tasks


class Store(Accounts, Tasks, Outbox):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = Connection(db)

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
        reader = sqlite3.connect(path, isolation_level=None)
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only=ON")
        reader.execute("PRAGMA busy_timeout=5000")
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

    async def applied_migrations(self) -> list[str]:
        rows = await self._db.execute_fetchall("SELECT name FROM migrations ORDER BY name")
        return [row[0] for row in rows]

    async def pragma(self, name: str) -> Any:
        rows = list(await self._db.execute_fetchall(f"PRAGMA {name}"))
        return rows[0][0] if rows else None

    async def ping(self) -> None:
        await self._db.execute_fetchall("SELECT 1")
