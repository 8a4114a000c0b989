"""The PostgreSQL store, for several relays sharing one database (spec/scale-out.md): an asyncpg
pool of `[store] pool_size` connections, migrations as named steps in the `migrations` table.

What keeps N instances from doing one piece of work twice lives in the SQL, not in a process:
- polling is claimed with `FOR UPDATE SKIP LOCKED`: an instance takes due rows nobody holds and
  pushes their due time out as its lease: `lease_until`, beside `next_poll_at`, which keeps the
  time the poll was planned for (the contract's `next_due` reports it once a lease ran out); a
  row is due at the later of the two, so one whose holder died falls due again by itself;
- a task's outcome is a fenced write (`... AND status IN ('queued', 'in_progress') AND
  lease_owner = $me`), and its webhook deliveries and copy jobs are inserted in that same
  transaction, so each happens once; they are claimed with `SKIP LOCKED` too;
- uniqueness (user names, key digests, idempotency keys, one copy job per variant) is a
  constraint, written with `INSERT ... ON CONFLICT`, never a read followed by a write.

The URL is handed to asyncpg as it is, so libpq's `?sslmode=` (disable, allow, prefer, require,
verify-ca, verify-full; `prefer` when absent) and its `sslrootcert`, `sslcert`, `sslkey` and the
`PG*` environment variables work as they do for psql.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from relay.store.postgres.accounts import Accounts
from relay.store.postgres.connection import GuardedPool, quiet_pool_logs, setup_connection
from relay.store.postgres.outbox import Outbox
from relay.store.postgres.schema import MIGRATIONS
from relay.store.postgres.sessions import Sessions
from relay.store.postgres.shared import Shared
from relay.store.postgres.tasks import Tasks

# pg_advisory_lock key: instances starting together migrate one after the other
MIGRATION_LOCK = 0x72656C6179  # "relay"
CLOSE_TIMEOUT_S = 10.0
NOTICES = "relay"  # the LISTEN/NOTIFY channel the relays tell each other on
RELISTEN_S = 2.0

log = logging.getLogger("relay.store")


class PostgresStore(Accounts, Sessions, Tasks, Outbox, Shared):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = GuardedPool(pool)
        self._listener: asyncpg.Connection | None = None
        self._on_notice: Callable[[str], None] | None = None
        self._relisten: asyncio.Task[None] | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """For `relay migrate`, which writes every table in one transaction."""
        return self._pool.raw

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """Hear what other relays do at once: NOTIFY on the `relay` channel says "due" (a task
        was submitted) or "finished" (its webhooks and copies are queued). A lost notice only
        delays: the workers also look every few seconds. A listening connection the database
        dropped (a restart) is replaced within seconds."""
        self._on_notice = on_notice
        await self._start_listening()

    async def _start_listening(self) -> None:
        def heard(_con: Any, _pid: int, _channel: str, payload: str) -> None:
            if self._on_notice is not None:
                self._on_notice(payload)

        def lost(_con: Any) -> None:
            if self._listener is not None and self._relisten is None:
                self._listener = None
                self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

        listener = await self._pool.raw.acquire()
        try:
            await listener.add_listener(NOTICES, heard)
        except BaseException:
            await self._pool.raw.release(listener)
            raise
        listener.add_termination_listener(lost)
        self._listener = listener

    async def _listen_again(self) -> None:
        try:
            while True:
                await asyncio.sleep(RELISTEN_S)
                try:
                    await self._start_listening()
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                    continue
                log.info("listening to the other relays again")
                return
        finally:
            self._relisten = None

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> PostgresStore:
        quiet_pool_logs()
        # min_size=1: a wrong host, password or sslmode fails here, at start, not at the
        # first request
        pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, init=setup_connection)
        store = cls(pool)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        self._on_notice = None
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.reset()
            with contextlib.suppress(Exception):
                await self._pool.raw.release(listener)
        # a connection still held (a query stuck on a dead network) must not hold up shutdown
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._pool.close()
        except TimeoutError:
            self._pool.raw.terminate()

    async def migrate(self) -> list[str]:
        """Apply the steps not yet recorded, each in one transaction, under an advisory lock
        so that instances starting at once never run a step twice; return their names."""
        applied = []
        async with self._pool.acquire() as con:
            await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await con.execute(
                    "CREATE TABLE IF NOT EXISTS migrations"
                    " (name text PRIMARY KEY, applied_at double precision NOT NULL)"
                )
                done = {row[0] for row in await con.fetch("SELECT name FROM migrations")}
                for name, sql in MIGRATIONS:
                    if name in done:
                        continue
                    async with con.transaction():
                        await con.execute(sql)
                        await con.execute(
                            "INSERT INTO migrations (name, applied_at) VALUES ($1, $2)",
                            name,
                            time.time(),
                        )
                    applied.append(name)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return applied

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")
