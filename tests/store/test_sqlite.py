"""What only the SQLite backend promises: durable pragmas, recorded migrations, and lookups on
the read-only connection that see every committed write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.store.sqlite import SqliteStore
from relay.store.sqlite.connection import BUSY_SLICE_MS
from relay.store.sqlite.schema import MIGRATIONS
from tests.store.test_contract import new
from tests.storetools import applied_migrations, pragma, update_task


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "relay.db")
    yield s
    await s.close()


async def test_pragmas_for_durability(store: SqliteStore):
    assert await pragma(store, "journal_mode") == "wal"
    assert await pragma(store, "synchronous") == 2  # FULL
    # SQLite waits a slice at a time; the writer tries again until its budget is spent
    assert await pragma(store, "busy_timeout") == BUSY_SLICE_MS
    assert await pragma(store, "foreign_keys") == 1


async def test_migrations_are_recorded_and_run_once(tmp_path: Path):
    path = tmp_path / "relay.db"
    first = await SqliteStore.open(path)
    assert await applied_migrations(first) == [name for name, _ in MIGRATIONS]
    assert await first.migrate() == []  # nothing left to apply
    await first.close()
    again = await SqliteStore.open(path)
    assert await applied_migrations(again) == [name for name, _ in MIGRATIONS]
    await again.close()


async def test_reads_see_committed_writes_at_once(store: SqliteStore):
    # lookups go through a second, read-only connection: it must see every committed write
    await store.create_task(new("v"))
    assert (await store.get_task("v")) is not None
    await update_task(store, "v", {"progress": 42})
    task = await store.get_task("v")
    assert task is not None and task.progress == 42
