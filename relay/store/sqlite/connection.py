"""The connections of one process, shared by every coroutine, and what SQLite's failures become.

Storage failures (a full disk, another process holding the write lock past the write budget, an
I/O error, a read-only or damaged file) leave this module as `StorageUnavailable`: a 503
`storage_unavailable` to a client, "try again later" to a worker. The statement or transaction
that failed was rolled back, so nothing is half-written and a retry is safe. Each change of that
state is logged once (the cause, then "writable again"; a cause that comes back within a minute
only at DEBUG, so a disk on the edge does not flood the log); other SQLite errors are bugs and
pass through unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from relay.errors import StorageUnavailable

log = logging.getLogger("relay.store")

T = TypeVar("T")

# A write waits at most this long for the database, queueing behind this process's other writes
# and for another process's lock together, then answers 503 rather than hang a client.
WRITE_BUDGET_S = 5.0
# SQLite's own busy wait per try; the writer tries again until the budget is spent, so the budget
# holds from the call, not from whenever the statement got its turn.
BUSY_SLICE_MS = 100
# The lookup connection runs on the event loop: a stalled read there would stall every request.
# In WAL mode readers do not wait for writers, so this only bounds rare cases (WAL recovery).
LOOKUP_BUSY_MS = 250
READ_BUSY_MS = 2000
# the same trouble again this soon after the last time it was logged is logged at DEBUG
REPEAT_AFTER_S = 60.0

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)

# primary result codes that mean "the storage cannot do it now", with a few words for the log
_STORAGE_CODES = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_BUSY: "locked by another process",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_READONLY: "the file is read-only",
    sqlite3.SQLITE_CANTOPEN: "the file cannot be opened",
    sqlite3.SQLITE_CORRUPT: "the database is damaged",
    sqlite3.SQLITE_NOTADB: "the database is damaged",
}
_HINTS = {
    "disk full": "writes answer 503 until space is freed; reads and downloads go on",
    "locked by another process": "writes answer 503 until the other process lets go",
    "the database is damaged": 'restore the latest backup (README, "Backup and restore")',
}
LOCKED = _STORAGE_CODES[sqlite3.SQLITE_BUSY]


def storage_reason(exc: sqlite3.Error) -> str | None:
    """What a SQLite error says about the storage, or None when it is not a storage problem."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the driver, not SQLite; its text still tells
        text = str(exc).lower()
        if "database or disk is full" in text:
            return _STORAGE_CODES[sqlite3.SQLITE_FULL]
        return LOCKED if "database is locked" in text else None
    return _STORAGE_CODES.get(code & 0xFF)


class Connection:
    """The writer (one aiosqlite connection) and two read-only connections beside it.

    The writer is shared by every coroutine: a transaction holds `lock` from BEGIN to COMMIT, so
    no other coroutine's statement lands inside it. Reads never queue behind it: one-row lookups
    by key (a task by id, a key by digest) run on `lookup`, a plain connection on the event loop
    itself (an indexed read takes microseconds, less than a hop to a thread costs); reads of
    many rows run on `reads`, an aiosqlite connection of their own. In WAL mode neither waits
    for a writer, this process's or another's, and each sees every committed write."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        *,
        lookup: sqlite3.Connection | None = None,
        reads: aiosqlite.Connection | None = None,
        budget_s: float = WRITE_BUDGET_S,
    ) -> None:
        self.db = db
        self.path = path
        self.lookup = lookup
        self.reads = reads
        self.budget_s = budget_s
        self.lock = asyncio.Lock()
        self._trouble: str | None = None
        self._changes_at_trouble = 0
        self._loud = False  # the current trouble was logged above DEBUG
        self._said: dict[str, float] = {}  # reason -> when it was last logged above DEBUG

    # --- reads ------------------------------------------------------------------------------

    async def read_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """One row by an indexed lookup; inside a transaction it must see that transaction's
        own writes, so it goes through the writer there."""
        if self.lookup is None or _in_transaction.get():
            return next(iter(await self.read_all(sql, params)), None)
        try:  # what _storage_errors does, without a context manager: every status read is here
            row: sqlite3.Row | None = self.lookup.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            reason = storage_reason(exc)
            if reason is None:
                raise
            raise self._unavailable(reason) from exc
        return row

    async def read_all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        if self.reads is None or _in_transaction.get():
            return list(await self.execute_fetchall(sql, params))
        with self._storage_errors():
            return list(await self.reads.execute_fetchall(sql, params))

    # --- writes -----------------------------------------------------------------------------

    async def execute(self, sql: str, params: Any = ()) -> aiosqlite.Cursor:
        return await self._write(lambda: self.db.execute(sql, params))

    async def execute_fetchall(self, sql: str, params: Any = ()) -> Iterable[sqlite3.Row]:
        return await self._write(lambda: self.db.execute_fetchall(sql, params))

    async def _write(self, op: Callable[[], Awaitable[T]]) -> T:
        if _in_transaction.get():  # the transaction holds the lock, and the write lock
            with self._storage_errors():
                return await op()
        deadline = asyncio.get_running_loop().time() + self.budget_s
        async with self._turn(deadline):
            with self._storage_errors():
                result = await self._retrying(op, deadline)
            self._succeeded()
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + self.budget_s
        async with self._turn(deadline):
            token = _in_transaction.set(True)
            try:
                try:
                    with self._storage_errors():
                        await self._retrying(lambda: self.db.execute("BEGIN IMMEDIATE"), deadline)
                    yield
                    with self._storage_errors():
                        await self.db.execute("COMMIT")
                except BaseException:
                    await self._rollback()
                    raise
            finally:
                _in_transaction.reset(token)
            self._succeeded()

    async def _rollback(self) -> None:
        """Undo whatever is left of the transaction. There may be nothing: SQLite rolls back by
        itself on a full disk, and a BEGIN that met the lock began nothing. And a cancelled BEGIN
        or COMMIT still runs in the connection's thread; statements run there in order, so this
        ROLLBACK comes after it, and the connection is never left inside a transaction."""
        try:
            await self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                log.error("database %s: could not roll back: %s", self.path, exc)

    @asynccontextmanager
    async def _turn(self, deadline: float) -> AsyncIterator[None]:
        """This process's writer, waited for until the deadline at most."""
        try:
            async with asyncio.timeout_at(deadline):
                await self.lock.acquire()
        except TimeoutError:
            # the writes ahead of this one are waiting for another process's lock
            raise self._unavailable(LOCKED) from None
        try:
            yield
        finally:
            self.lock.release()

    async def _retrying(self, op: Callable[[], Awaitable[T]], deadline: float) -> T:
        """Run `op`, trying again while another process holds the write lock: a statement that
        met SQLITE_BUSY did nothing, so trying it again is safe."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await op()
            except sqlite3.OperationalError as exc:
                if storage_reason(exc) != LOCKED or loop.time() >= deadline:
                    raise
            await asyncio.sleep(0.01)

    # --- storage trouble --------------------------------------------------------------------

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            reason = storage_reason(exc)
            if reason is None:
                raise
            raise self._unavailable(reason) from exc

    def _unavailable(self, reason: str) -> StorageUnavailable:
        if reason != self._trouble:
            self._trouble = reason
            self._changes_at_trouble = self.db.total_changes
            # a disk on the edge lets some writes through and not others: say it once a while
            now = time.monotonic()
            self._loud = now - self._said.get(reason, -math.inf) >= REPEAT_AFTER_S
            level = logging.WARNING if reason == LOCKED else logging.ERROR
            if self._loud:
                self._said[reason] = now
            hint = _HINTS.get(reason, "writes answer 503 until it clears")
            log.log(
                level if self._loud else logging.DEBUG,
                "database %s: %s; %s",
                self.path,
                reason,
                hint,
            )
        return StorageUnavailable(
            f"the relay's database is unavailable ({reason}); retry later", reason=reason
        )

    def _succeeded(self) -> None:
        """A write went through: the trouble is over when it has written something (an UPDATE
        that matched nothing proves no free space), or had to take the lock for it."""
        if self._trouble is None:
            return
        if self._trouble == LOCKED or self.db.total_changes != self._changes_at_trouble:
            level = logging.WARNING if self._loud else logging.DEBUG
            log.log(level, "database %s: writable again (was: %s)", self.path, self._trouble)
            self._trouble = None

    async def close(self) -> None:
        if self.lookup is not None:
            self.lookup.close()
        if self.reads is not None:
            await self.reads.close()
        await self.db.close()


class Part:
    """What every part of the Store shares: the connection."""

    _db: Connection
