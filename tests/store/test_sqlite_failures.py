"""The SQLite store on a bad day, with real files: another connection holding the write lock, a
full database, a full filesystem under a transaction's COMMIT, a damaged file, and the backup."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.domain import Outcome
from relay.errors import StorageUnavailable
from relay.store import NewDelivery
from relay.store.sqlite import DatabaseDamaged, SqliteStore
from relay.store.sqlite.connection import LOCKED
from relay.store.sqlite.maintenance import backup
from tests.smalldisk import small_disk
from tests.store.test_contract import new, submitted

BUDGET_S = 0.5


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "relay.db")
    s._db.budget_s = BUDGET_S  # the production budget is WRITE_BUDGET_S; the logic is the same
    yield s
    await s.close()


def hold_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_write_lock_held_elsewhere_fails_writes_within_the_budget_not_reads(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
):
    await submitted(store, "old")
    other = hold_lock(store.path)
    try:
        started = time.monotonic()
        # three writes queued together: the wait behind each other counts toward each budget
        results = await asyncio.gather(
            store.create_task(new("a")),
            store.create_task(new("b")),
            store.finish("old", None, Outcome.failed("x", "y"), now=1.0),
            return_exceptions=True,
        )
        took = time.monotonic() - started
        assert all(isinstance(r, StorageUnavailable) for r in results), results
        assert {r.reason for r in results if isinstance(r, StorageUnavailable)} == {LOCKED}
        assert BUDGET_S * 0.8 <= took <= BUDGET_S + 0.4, took

        started = time.monotonic()
        await store.ping()
        assert (await store.get_task("old")) is not None
        assert [
            t.id for t in await store.list_tasks(owner=None, after=None, limit=10, descending=True)
        ] == ["old"]
        assert await store.count_active_by_channel() == {"demo": 1}
        assert time.monotonic() - started < 0.1  # reads never waited for the lock
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.create_task(new("a"))
    assert (await store.get_task("a")) is not None
    said = [r.getMessage() for r in caplog.records if r.name == "relay.store"]
    assert len([line for line in said if "503" in line]) == 1, said
    assert any("writable again" in line for line in said)


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_none_open(
    store: SqliteStore,
):
    await submitted(store, "v")
    store._db.budget_s = 5.0
    other = hold_lock(store.path)
    try:
        waiting = asyncio.create_task(store.finish("v", None, Outcome("completed"), now=5.0))
        await asyncio.sleep(0.25)  # its BEGIN is trying in the connection's thread
        waiting.cancel()
    finally:
        other.execute("ROLLBACK")  # the BEGIN in flight gets the lock now
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await store.create_task(new("after"))
    assert not store._db.db.in_transaction
    seen = sqlite3.connect(store.path)  # committed, so another connection sees it
    try:
        assert seen.execute("SELECT count(*) FROM tasks WHERE id = 'after'").fetchone()[0] == 1
    finally:
        seen.close()


async def test_a_full_database_refuses_writes_and_changes_nothing(store: SqliteStore):
    await submitted(store, "v")
    pages = next(iter(await store._db.db.execute_fetchall("PRAGMA page_count")))[0]
    await store._db.db.execute(f"PRAGMA max_page_count={pages}")
    body = "x" * 3000  # each delivery needs a page of its own
    deliveries = [NewDelivery(f"evt_{i}", "https://a.test/h", body) for i in range(5)]
    with pytest.raises(StorageUnavailable) as refused:
        await store.finish("v", None, Outcome("completed"), now=5.0, deliveries=deliveries)
    assert refused.value.reason == "disk full" and refused.value.status == 503
    assert not store._db.db.in_transaction
    task = await store.get_task("v")
    assert task is not None and task.status == "queued"  # the transaction was rolled back
    assert await store.claim_deliveries(now=9.0, lease_owner="w", lease_s=1, limit=9) == []

    await store._db.db.execute("PRAGMA max_page_count=1073741823")
    done = await store.finish("v", None, Outcome("completed"), now=5.0, deliveries=deliveries)
    assert done is not None and done.status == "completed"


async def test_a_full_filesystem_under_a_transaction_rolls_back_and_recovers(tmp_path: Path):
    # on tmpfs the pages reach the WAL at COMMIT, so that is where the disk is found full
    with small_disk(tmp_path / "disk") as disk:
        store = await SqliteStore.open(disk.path / "relay.db")
        try:
            await submitted(store, "v")
            await disk.fill(store)
            events = [NewDelivery(f"evt_{i}", "https://a.test/h", "x" * 3000) for i in range(5)]
            with pytest.raises(StorageUnavailable) as refused:
                await store.finish("v", None, Outcome("completed"), now=5.0, deliveries=events)
            assert refused.value.reason == "disk full"
            assert not store._db.db.in_transaction  # not left holding the write lock
            if disk.mounted:  # not a byte left: a small row too (a page cap has room for it)
                with pytest.raises(StorageUnavailable):
                    await store.create_task(new("w"))
            task = await store.get_task("v")
            assert task is not None and task.status == "queued"

            await disk.free(store)
            done = await store.finish("v", None, Outcome("completed"), now=5.0, deliveries=events)
            assert done is not None and done.status == "completed"
            await store.create_task(new("w"))
        finally:
            await store.close()


async def _made(path: Path) -> None:
    store = await SqliteStore.open(path)
    for i in range(50):
        await store.create_task(new(f"v{i:03d}", prompt="p" * 300))
    await store.close()


async def test_a_damaged_file_is_refused_at_open_with_its_path(tmp_path: Path):
    path = tmp_path / "relay.db"
    await _made(path)
    root = (
        sqlite3.connect(path)
        .execute("SELECT rootpage FROM sqlite_master WHERE name = 'tasks'")
        .fetchone()[0]
    )
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * 4096)
        fh.write(b"\x57")  # not a b-tree page type
    with pytest.raises(DatabaseDamaged) as damaged:
        await SqliteStore.open(path)
    assert str(path) in str(damaged.value) and "Backup and restore" in str(damaged.value)
    assert "\n" not in str(damaged.value)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path):
    path = tmp_path / "relay.db"
    path.write_bytes(b"this is no database at all" * 200)
    with pytest.raises(DatabaseDamaged, match="not a database"):
        await SqliteStore.open(path)


async def test_backup_copies_what_is_committed_while_a_write_is_open(tmp_path: Path):
    path = tmp_path / "relay.db"
    await _made(path)
    writer = hold_lock(path)  # a transaction in flight: its rows are not in the copy
    writer.execute("INSERT INTO users (name, role, created_at) VALUES ('uncommitted', 'user', 0)")
    try:
        done = await asyncio.to_thread(backup, path, tmp_path / "copy.db")
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert (done.tasks, done.users) == (50, 0)
    copy = await SqliteStore.open(tmp_path / "copy.db")
    try:
        tasks = await copy.list_tasks(owner=None, after=None, limit=100, descending=False)
        assert [t.id for t in tasks] == [f"v{i:03d}" for i in range(50)]
        assert await copy.list_users() == []
    finally:
        await copy.close()


async def test_storage_trouble_is_logged_once_per_change(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    other = hold_lock(store.path)
    try:
        for i in range(3):
            with pytest.raises(StorageUnavailable):
                await store.create_task(new(f"x{i}"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.create_task(new("y"))
    await store.create_task(new("z"))
    lines = [r.getMessage() for r in caplog.records if r.name == "relay.store"]
    assert len(lines) == 2, lines
    assert LOCKED in lines[0] and "writable again" in lines[1]
    assert not [r for r in caplog.records if r.exc_info]
