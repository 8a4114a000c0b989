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


class Part:
    """What every part of the Store shares: the connection."""

    _db: Connection
