"""A throwaway PostgreSQL for the scale-out benchmark: the test suite's cluster
(tests/store/pgcluster.py: initdb into a temporary directory, one server on a free 127.0.0.1
port, run as the `postgres` user when we are root), made durable like the relay's SQLite
(fsync on, synchronous_commit on, full_page_writes on: SQLite runs synchronous=FULL), with its
tables made by the relay's own migrations and rows written straight in with COPY.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from _common import ROOT

if str(ROOT) not in sys.path:  # tests.store.pgcluster, from this checkout
    sys.path.insert(0, str(ROOT))

from tests.store import pgcluster

DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "128MB",
}


@dataclass
class Postgres:
    cluster: pgcluster.Cluster
    version: str
    made: int = 0

    @property
    def pid(self) -> int:
        """The postmaster; every backend is its child."""
        assert self.cluster.process is not None
        return self.cluster.process.pid

    def database(self, name: str) -> str:
        """A new, migrated database; its URL (TLS off: the relays are on the same host)."""
        self.made += 1
        name = f"{name}_{self.made}"
        self.cluster.create_database(name)
        url = self.cluster.url(name, sslmode="disable")
        migrate(url)
        return url


def missing() -> str | None:
    return pgcluster.missing()


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    bindir = pgcluster.find_bindir()
    assert bindir is not None, pgcluster.missing()
    cluster = pgcluster.Cluster(bindir)
    cluster.settings.update(DURABLE)
    cluster.start()
    try:
        version = subprocess.run(
            [bindir / "postgres", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        yield Postgres(cluster, version)
    finally:
        cluster.stop()


def migrate(url: str) -> None:
    """The relay's own schema, by its own code."""
    from relay.store import open_store

    async def run() -> None:
        store = await open_store(url)
        await store.close()

    asyncio.run(run())


def transactions(url: str) -> int:
    """Transactions the database has seen (pg_stat_database: committed + rolled back; a
    statement outside a transaction is one). Backends report every second or so while busy, so
    a difference over a window is off by about a second's worth."""
    import asyncpg

    async def run() -> int:
        con = await asyncpg.connect(url)
        try:
            value = await con.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
        finally:
            await con.close()
        return int(value)

    return asyncio.run(run())


COLUMNS = [
    *("id", "owner", "channel", "provider", "model", "upstream_model", "upstream_id"),
    *("request", "prompt", "seconds", "size", "status", "progress", "created_at"),
    *("submitted_at", "updated_at", "next_poll_at", "poll_interval"),
]


def insert_tasks(url: str, due: dict[str, float]) -> float:
    """Running tasks of the `fake-openai` channel, upstream id -> next_poll_at, as
    bench/polling.py writes them into SQLite; then ANALYZE (as autovacuum would). Returns the
    seconds it took."""
    import asyncpg

    now = time.time()
    records = [
        (
            f"video_bench{i:06d}",
            "bench",
            "fake-openai",
            "openai",
            "sora-2",
            "sora-2",
            upstream_id,
            "{}",
            "bench",
            "4",
            "720x1280",
            "in_progress",
            10,
            int(now) - 120,
            now - 120,
            now - 60,
            at,
            60.0,
        )
        for i, (upstream_id, at) in enumerate(due.items())
    ]

    async def run() -> None:
        con = await asyncpg.connect(url)
        try:
            await con.copy_records_to_table("tasks", records=records, columns=COLUMNS)
            await con.execute("ANALYZE tasks")
        finally:
            await con.close()

    t0 = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - t0
