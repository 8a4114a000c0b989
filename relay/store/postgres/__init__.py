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
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from relay.store.postgres.accounts import Accounts
from relay.store.postgres.connection import setup_connection
from relay.store.postgres.outbox import Outbox
from relay.store.postgres.schema import MIGRATIONS
from relay.store.postgres.sessions import Sessions
from relay.store.postgres.shared import Shared
from relay.store.postgres.tasks import Tasks

# pg_advisory_lock key: instances starting together migrate one after the other
MIGRATION_LOCK = 0x72656C6179  # "relay"
CLOSE_TIMEOUT_S = 10.0
NOTICES = "relay"  # the LISTEN/NOTIFY channel the relays tell each other on


class PostgresStore(Accounts, Sessions, Tasks, Outbox, Shared):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._listener: asyncpg.Connection | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """For `relay migrate`, which writes every table in one transaction."""
        return self._pool

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """Hear what other relays do at once: NOTIFY on the `relay` channel says "due" (a task
        was submitted) or "finished" (its webhooks and copies are queued). A lost notice only
        delays: the workers also look every few seconds."""

        def heard(_con: Any, _pid: int, _channel: str, payload: str) -> None:
            on_notice(payload)

        self._listener = await self._pool.acquire()
        await self._listener.add_listener(NOTICES, heard)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> PostgresStore:
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
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.reset()
            await self._pool.release(listener)
        # a connection still held (a query stuck on a dead network) must not hold up shutdown
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self._pool.terminate()

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
