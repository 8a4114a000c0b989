"""The asyncpg pool every part of the PostgreSQL store shares, and the two helpers its SQL needs:
numbered parameters for queries built from a dict, and the row count of a command tag.

The pool is wrapped so that losing the database (restarting, unreachable, disk full, out of
connections, read-only) leaves the store as `StorageUnavailable`: a 503 with Retry-After for a
request, "try again" for a worker, one log line when it starts and one when it ends, as with
SQLite. asyncpg's pool replaces a dead connection by itself, so nothing needs a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from relay.errors import InvalidRequest, StorageUnavailable

log = logging.getLogger("relay.store")

REPEAT_AFTER_S = 60.0  # the same trouble again within this is said at DEBUG


_E = asyncpg.exceptions
# the first class that matches names the trouble; the order goes from the narrow to the wide
TROUBLES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (_E.DiskFullError, "disk full"),
    (_E.TooManyConnectionsError, "out of connections"),
    (_E.InsufficientResourcesError, "out of resources"),
    (_E.ReadOnlySQLTransactionError, "read-only (a standby?)"),
    (_E.QueryCanceledError, "a statement timed out"),
    (_E.OperatorInterventionError, "shutting down or starting"),
    ((_E.PostgresConnectionError, OSError, TimeoutError), "unreachable"),
)
CAUGHT = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def trouble(exc: BaseException) -> str | None:
    """What is wrong with the database when `exc` says it cannot serve (None: a bug or a
    constraint, which stays what it is)."""
    for kind, reason in TROUBLES:
        if isinstance(exc, kind):
            return reason
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return "unreachable"  # the connection went away in the middle of a call
    return None


class QuietPool(logging.Filter):
    """asyncpg's pool logs each failed reconnect with a traceback; while the database is gone
    that is the relay's own one line (Health), so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or trouble(exc) is None


def quiet_pool_logs() -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, QuietPool) for f in pool_log.filters):
        pool_log.addFilter(QuietPool())


class Health:
    """Says once when the database stops serving and once when it serves again."""

    def __init__(self) -> None:
        self.trouble: str | None = None
        self._said: dict[str, float] = {}

    def failed(self, exc: BaseException) -> StorageUnavailable | None:
        reason = trouble(exc)
        if reason is None:
            return None
        if reason != self.trouble:
            self.trouble = reason
            now = time.monotonic()
            loud = now - self._said.get(reason, -REPEAT_AFTER_S) >= REPEAT_AFTER_S
            if loud:
                self._said[reason] = now
            log.log(
                logging.ERROR if loud else logging.DEBUG,
                "database %s (%s); requests answer 503 and work waits until it is back",
                reason,
                type(exc).__name__,
            )
        return StorageUnavailable(
            f"the relay's database is unavailable ({reason}); retry later", reason=reason
        )

    def served(self) -> None:
        if self.trouble is not None:
            log.warning("database reachable again (was: %s)", self.trouble)
            self.trouble = None


class GuardedPool:
    """The asyncpg pool's calls the store makes, with the database's trouble as
    StorageUnavailable."""

    def __init__(self, pool: asyncpg.Pool, health: Health | None = None) -> None:
        self.raw = pool
        self.health = health or Health()

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await getattr(self.raw, name)(*args, **kwargs)
        except CAUGHT as exc:
            self._raise_unavailable(exc)
            raise
        self.health.served()
        return result

    def _raise_unavailable(self, exc: BaseException) -> None:
        if isinstance(exc, _E.CharacterNotInRepertoireError | _E.UntranslatableCharacterError):
            # text a client sent that PostgreSQL cannot store (a NUL); the request layer refuses
            # those by name, this is the net under it: a 400, never a 500
            raise InvalidRequest("the request holds a NUL character (U+0000)") from exc
        unavailable = self.health.failed(exc)
        if unavailable is not None:
            raise unavailable from exc

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        return str(await self._call("execute", query, *args, **kwargs))

    async def executemany(self, query: str, args: Any, **kwargs: Any) -> None:
        await self._call("executemany", query, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        return list(await self._call("fetch", query, *args, **kwargs))

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._call("fetchrow", query, *args, **kwargs)
        return row

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._call("fetchval", query, *args, **kwargs)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a transaction; the database failing anywhere inside (the block's
        statements, COMMIT) comes out as StorageUnavailable, after asyncpg rolled back."""
        try:
            async with self.raw.acquire() as con:
                yield con
        except CAUGHT as exc:
            self._raise_unavailable(exc)
            raise
        self.health.served()

    async def close(self) -> None:
        await self.raw.close()


async def setup_connection(con: asyncpg.Connection) -> None:
    """Run on every new pool connection: `json` columns go in and out as Python values."""
    await con.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        format="text",
    )


class Args:
    """Positional parameters collected while a query is built: `args(value)` returns its `$n`."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def affected(tag: str) -> int:
    """The row count of a command tag such as 'UPDATE 1' or 'INSERT 0 1'."""
    return int(tag.rsplit(" ", 1)[-1])


class Part:
    """What every part of the Store shares: the pool (each call takes a connection and gives it
    back; a transaction holds one connection from BEGIN to COMMIT)."""

    _pool: GuardedPool
