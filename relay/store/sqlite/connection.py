"""The one aiosqlite connection, shared safely by every coroutine of the process."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)


class Connection:
    """The one aiosqlite connection (the writer), shared by every coroutine: a transaction holds
    the lock from BEGIN to COMMIT, so no other coroutine's statement lands inside it.

    Beside it, a plain read-only connection answers one-row lookups by key (a task by id, a key
    by digest) on the event loop itself: in WAL mode a reader never waits for the writer, and an
    indexed read takes microseconds, less than the hop to aiosqlite's thread costs."""

    def __init__(self, db: aiosqlite.Connection, reader: sqlite3.Connection | None = None) -> None:
        self.db = db
        self.reader = reader
        self.lock = asyncio.Lock()

    async def read_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """One row by an indexed lookup; inside a transaction it must see that transaction's
        own writes, so it goes through the writer there."""
        if self.reader is None or _in_transaction.get():
            rows = await self.execute_fetchall(sql, params)
            return next(iter(rows), None)
        row: sqlite3.Row | None = self.reader.execute(sql, params).fetchone()
        return row

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
        if self.reader is not None:
            self.reader.close()
        await self.db.close()


class Part:
    """What every part of the Store shares: the connection."""

    _db: Connection
