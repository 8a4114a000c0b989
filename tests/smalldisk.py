"""A real full filesystem for storage tests: a small tmpfs, filled to the last byte and freed
again. Where mounting is not allowed (not root), the database is capped instead with
`PRAGMA max_page_count` on the relay's writer connection, which SQLite reports the same way
("database or disk is full")."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

from relay.store import Store
from relay.store.sqlite import SqliteStore

NO_LIMIT = 1073741823  # SQLite's default max_page_count


class SmallDisk:
    def __init__(self, path: Path, mounted: bool) -> None:
        self.path = path
        self.mounted = mounted
        self.filler = path / "filler"

    async def fill(self, store: Store) -> None:
        """Leave the database no room to write: on tmpfs, an empty WAL (a checkpoint into the
        main file, from another connection) and not one free byte; else a page cap."""
        assert isinstance(store, SqliteStore)
        if not self.mounted:
            rows = list(await store._db.db.execute_fetchall("PRAGMA page_count"))
            await store._db.db.execute(f"PRAGMA max_page_count={rows[0][0]}")
            return
        other = sqlite3.connect(store.path, timeout=5)
        try:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            other.close()
        with open(self.filler, "wb", buffering=0) as fh:
            for chunk in (1 << 20, 4096, 512, 1):
                with contextlib.suppress(OSError):  # ENOSPC: on to a smaller piece
                    while fh.write(b"\0" * chunk):
                        pass
        assert os.statvfs(self.path).f_bavail == 0

    async def free(self, store: Store) -> None:
        assert isinstance(store, SqliteStore)
        if not self.mounted:
            await store._db.db.execute(f"PRAGMA max_page_count={NO_LIMIT}")
            return
        self.filler.unlink()


@contextlib.contextmanager
def small_disk(where: Path, size: str = "16m") -> Iterator[SmallDisk]:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            check=True,
            capture_output=True,
        )
        mounted = True
    except (OSError, subprocess.CalledProcessError):
        mounted = False
    try:
        yield SmallDisk(where, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
