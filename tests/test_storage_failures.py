"""A bad day for the database, through real sockets and real files: a full filesystem, another
process holding the write lock, a damaged file at start (the backup and restore: test_backup.py).

Each refused write is a 503 `storage_unavailable` that changed nothing (no task row, no upstream
job); reads and downloads go on; the relay recovers by itself once the storage does; the state is
logged once, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.config import Config
from relay.store.sqlite import WRITE_BUDGET_S, SqliteStore
from relay.store.sqlite.connection import LOCKED
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.openai import FakeOpenAI
from tests.smalldisk import small_disk
from tests.storetools import copies_of
from tests.test_serve import KEY, free_port, write_config

PYTHON = [sys.executable, "-m", "relay"]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


def submits(fake: FakeOpenAI, marker: str) -> int:
    """Upstream creates whose request carried `marker` (its prompt)."""
    return sum(marker.encode() in r.body for r in fake.calls("/videos", "POST"))


async def stored_video(relay: Relay) -> str:
    """A completed video whose copy is on the relay's disk, nothing else left to copy."""
    video = await relay.create(prompt="kept on disk")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    for _ in range(500):
        copies = await copies_of(relay.store, video["id"])
        if copies and all(c.state == "stored" for c in copies):
            return str(video["id"])
        await asyncio.sleep(0.02)
    raise AssertionError("the copy was never stored")


async def reads_still_work(relay: Relay, video_id: str) -> None:
    assert (await relay.get(video_id))["status"] == "completed"
    resp = await relay.client.get("/v1/videos", headers=auth())
    assert resp.status == 200 and video_id in [v["id"] for v in (await resp.json())["data"]]
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    resp = await relay.client.get("/healthz")
    assert resp.status == 200


def storage_refused(status: int, body: dict[str, Any], headers: Any) -> None:
    assert status == 503, body
    assert body["error"]["code"] == "storage_unavailable"
    assert body["error"]["type"] == "server_error"
    assert int(headers["Retry-After"]) >= 1


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- item 6: a full disk --------------------------------------------------------------------


async def test_a_full_disk_refuses_writes_with_503_and_recovers_when_space_is_freed(
    tmp_path: Path,
    upstream: FakeOpenAI,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    with small_disk(tmp_path / "disk") as disk:
        config = make_config(
            server={"data_dir": str(disk.path / "data")},
            storage={"keep_videos": True},
            channels=[upstream.channel(upstream.base_url)],
        )
        relay: Relay = await start_relay(config)
        video_id = await stored_video(relay)
        await disk.fill(relay.store)

        # on tmpfs the first write fails; under a page cap the pages' free room goes first
        tries = 1 if disk.mounted else 300
        for i in range(tries):
            prompt = f"on a full disk {i}"
            resp = await relay.client.post("/v1/videos", json={"prompt": prompt}, headers=auth())
            body = await resp.json()
            if resp.status != 200:
                break
        storage_refused(resp.status, body, resp.headers)
        # the row could not be written, so the upstream never heard of it
        rows = await relay.store.list_tasks(owner=None, after=None, limit=1000, descending=True)
        assert prompt not in [t.prompt for t in rows]
        assert submits(upstream, prompt) == 0

        for _ in range(3):  # stays refused, and says so once
            resp = await relay.client.post("/v1/videos", json={"prompt": "again"}, headers=auth())
            storage_refused(resp.status, await resp.json(), resp.headers)
        assert submits(upstream, "again") == 0
        await reads_still_work(relay, video_id)

        await disk.free(relay.store)
        video = await relay.create(prompt="space again")  # no restart
        assert submits(upstream, "space again") == 1
        assert (await relay.wait(video["id"]))["status"] == "completed"

    lines = [r.getMessage() for r in problems(caplog)]
    assert [line for line in lines if "disk full" in line and "503" in line] == [
        next(line for line in lines if "disk full" in line)
    ]
    assert any("writable again" in line for line in lines)
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


# --- item 7: another process holds the write lock -------------------------------------------

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


def hold_write_lock(db: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0


async def test_a_write_lock_held_elsewhere_stalls_neither_health_nor_reads(
    upstream: FakeOpenAI,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    relay: Relay = await start_relay(
        make_config(storage={"keep_videos": True}, channels=[upstream.channel(upstream.base_url)])
    )
    video_id = await stored_video(relay)
    upstream.polls_to_finish = 10**6
    running = await relay.create(prompt="still running")  # the poller has work to write

    holder = await asyncio.to_thread(hold_write_lock, data_dir / "relay.db")
    try:
        await asyncio.sleep(1.5)  # the poller is in its wait for the lock by now
        took = []
        for _ in range(20):
            started = time.monotonic()
            resp = await relay.client.get("/healthz")
            took.append(time.monotonic() - started)
            assert resp.status == 200
            await asyncio.sleep(0.05)
        assert max(took) < 0.25, took  # not behind the poller's wait for the lock

        started = time.monotonic()
        await reads_still_work(relay, video_id)
        assert (await relay.get(running["id"]))["status"] in ("queued", "in_progress")
        assert time.monotonic() - started < 1.0

        started = time.monotonic()
        resp = await relay.client.post("/v1/videos", json={"prompt": "locked"}, headers=auth())
        waited = time.monotonic() - started
        storage_refused(resp.status, await resp.json(), resp.headers)
        assert waited <= WRITE_BUDGET_S + 1.0, waited
        assert submits(upstream, "locked") == 0
    finally:
        await asyncio.to_thread(let_go, holder)

    video = await relay.create(prompt="unlocked")
    assert submits(upstream, "unlocked") == 1 and video["status"] in ("queued", "in_progress")
    lines = [r.getMessage() for r in problems(caplog)]
    assert len([line for line in lines if LOCKED in line and "503" in line]) == 1, lines
    assert not [line for line in lines if "round failed" in line], lines
    assert not [r for r in caplog.records if r.exc_info], "the poller retries without a traceback"
    assert any("writable again" in line for line in lines)


# --- item 8: a damaged database at start ------------------------------------------------------


def make_database(path: Path, tasks: int = 300) -> None:
    async def build() -> None:
        store = await SqliteStore.open(path)
        await store.close()

    asyncio.run(build())
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for i in range(tasks):
        db.execute(
            "INSERT INTO tasks (id, owner, channel, provider, model, upstream_model, request,"
            " prompt, seconds, size, status, created_at, updated_at)"
            " VALUES (?, 'tester', 'demo', 'demo', 'sora-2', 'sora-2', '{}', ?, '4',"
            " '720x1280', 'completed', ?, ?)",
            (f"video_{i:06d}", "a prompt " * 20, int(time.time()), time.time()),
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def flip_byte(path: Path, page: int, offset: int) -> None:
    size = 4096
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size + offset)
        byte = fh.read(1)[0]
        fh.seek((page - 1) * size + offset)
        fh.write(bytes([byte ^ 0x5A]))


def tasks_root(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tasks'").fetchone()
    finally:
        db.close()
    return int(row[0])


@pytest.mark.parametrize(
    ("where", "offset"),
    [
        ("tasks root", 0),  # the b-tree page type: the table cannot be read at all
        ("page 2", 1),  # the first free block pointer of page 2 (the migrations table)
    ],
)
def test_a_damaged_database_stops_the_start_with_one_line(tmp_path: Path, where: str, offset: int):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "relay.db"
    make_database(db)
    flip_byte(db, tasks_root(db) if where == "tasks root" else 2, offset)
    conf = tmp_path / "config.toml"
    write_config(conf, free_port(), data, '["sora-2"]')
    started = time.monotonic()
    done = subprocess.run(
        [*PYTHON, "serve", "--config", str(conf)],
        capture_output=True,
        text=True,
        env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin"},
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 10
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    said = [line for line in output.splitlines() if "is damaged" in line]
    assert len(said) == 1, output
    assert said[0].startswith("relay: could not start: the database")
    assert str(db) in said[0] and "Backup and restore" in said[0]
