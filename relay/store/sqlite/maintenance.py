"""The operator's side of the SQLite file: the check at start, and the online backup.

`quick_check` runs before anything else touches a database: a damaged file stops the start with
one line naming the file and the way back (the backup of the README), instead of a relay that
half works or hangs. `backup` copies a live database with SQLite's online backup API: one read
transaction over every page, so the copy is one consistent moment while the relay goes on writing
(in WAL mode a reader never blocks the writer).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from relay.store.sqlite.connection import storage_reason

RESTORE_HINT = (
    "restore the latest backup: stop the relay, delete {path}-wal and {path}-shm, copy the "
    'backup to {path} (README, "Backup and restore")'
)


class DatabaseDamaged(Exception):
    """The database file failed SQLite's quick_check (or is not a database at all)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the database {path} is damaged ({problem}); " + RESTORE_HINT.format(path=path)
        )
        self.path = path
        self.problem = problem


def is_damage(exc: sqlite3.Error) -> bool:
    return storage_reason(exc) == "the database is damaged"


def first_problem(rows: list[str]) -> str | None:
    """quick_check's first complaint, or None for "ok" (its report can run to thousands of
    lines; the first names the damaged page)."""
    lines = [line for row in rows for line in row.splitlines()]
    lines = [line for line in lines if line and not line.startswith("*** in database")]
    if lines == ["ok"]:
        return None
    problem = lines[0] if lines else "quick_check reported nothing"
    return problem if len(problem) <= 160 else problem[:157] + "..."


async def quick_check(db: aiosqlite.Connection, path: Path) -> None:
    """Raise DatabaseDamaged unless the file passes `PRAGMA quick_check` (the structure of every
    page and index; it takes a fraction of the time of integrity_check)."""
    try:
        rows = [str(row[0]) for row in await db.execute_fetchall("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise DatabaseDamaged(path, str(exc)) from None
        raise
    if (problem := first_problem(rows)) is not None:
        raise DatabaseDamaged(path, problem)


@dataclass(frozen=True)
class Backup:
    source: Path
    target: Path
    bytes: int
    tasks: int
    users: int
    seconds: float


def backup(source: Path, target: Path) -> Backup:
    """Copy the database at `source` to `target` (a file, or a directory to put a dated file
    in), safely while the relay runs. The copy is written next to the target and renamed into
    place once complete and checked, so `target` is never a half-written file; it is mode 0600
    (it holds key digests and password hashes) and a self-contained file (journal_mode=DELETE:
    no -wal beside it is needed to read it)."""
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if target.is_dir():
        target = target / time.strftime("relay-%Y%m%d-%H%M%S.db")
    elif not target.parent.is_dir():
        raise FileNotFoundError(f"no directory {target.parent} for the backup")
    if target.exists() and target.resolve() == source.resolve():
        raise ValueError(f"{target} is the live database itself; name another file")
    started = time.monotonic()
    partial = target.with_name(f".{target.name}.part")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        # not mode=ro: a read-only connection that is the last to close leaves -wal and -shm
        # files behind, owned by whoever ran the backup (root), which the relay cannot open
        src = sqlite3.connect(source, timeout=30)
        try:
            src.execute("PRAGMA query_only=ON")
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # pages=-1: every page in one step, one consistent snapshot
                dst.execute("PRAGMA journal_mode=DELETE")
                problem = first_problem(
                    [str(row[0]) for row in dst.execute("PRAGMA quick_check").fetchall()]
                )
                if problem is not None:
                    raise DatabaseDamaged(source, problem)
                tasks = _count(dst, "tasks")
                users = _count(dst, "users")
            finally:
                dst.close()
        finally:
            src.close()
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return Backup(
        source=source,
        target=target,
        bytes=target.stat().st_size,
        tasks=tasks,
        users=users,
        seconds=time.monotonic() - started,
    )


def _count(db: sqlite3.Connection, table: str) -> int:
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.OperationalError:  # a database older than the table
        return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
