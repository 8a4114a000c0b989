"""`relay migrate`: copy a SQLite relay's rows into PostgreSQL.

Every table a relay keeps is either copied or named here as left behind, so a table added by a
later migration cannot be forgotten silently (`transfer` refuses a table it does not know).
The rows are read in one SQLite read transaction (a consistent snapshot, even with the relay
running) and written in one PostgreSQL transaction (all or nothing). A row is matched by its
primary key and written over when it is there already, so a second run brings the target up to
date and duplicates nothing; a target holding rows the source lacks is refused, since writing
over another relay's rows by number would corrupt them.
"""

# ruff: noqa: S608 - table and column names come from COPIED and PostgreSQL's own catalogs
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

# in the order foreign keys need (users before their keys and sessions)
COPIED = (
    "users",
    "api_keys",
    "sessions",
    "tasks",
    "idempotency_keys",
    "webhook_deliveries",
    "copies",
    "secrets",
)
LEFT_BEHIND = {
    "migrations": "each database records its own schema steps",
    "channel_health": "a relay starts on its own view of the channels",
    "rate_buckets": "buckets refill within a minute",
    "sqlite_sequence": "SQLite's own bookkeeping",
}
BATCH = 1000


class TransferError(Exception):
    """Why nothing was written (one line)."""


@dataclass(frozen=True, slots=True)
class Counted:
    table: str
    source: int
    target: int


async def transfer(
    sqlite_path: Path,
    pool: Any,  # asyncpg.Pool of a migrated database
    *,
    progress: Callable[[str, int], Awaitable[None] | None] | None = None,
) -> list[Counted]:
    """Copy every table in COPIED from the SQLite file into the PostgreSQL database; returns the
    row counts of both sides afterwards (equal, or TransferError is raised)."""
    async with aiosqlite.connect(f"file:{sqlite_path}?mode=ro", uri=True) as db:
        present = {
            row[0]
            for row in await db.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        }
        unknown = sorted(present - set(COPIED) - set(LEFT_BEHIND))
        if unknown:
            raise TransferError(
                f"the SQLite database has tables this version cannot copy: {unknown}"
            )
        tables = [t for t in COPIED if t in present]
        await db.execute("BEGIN")  # one snapshot for every table
        try:
            async with pool.acquire() as con, con.transaction():
                counts = []
                for table in tables:
                    copied = await _copy_table(db, con, table)
                    if progress is not None:
                        done = progress(table, copied)
                        if done is not None:
                            await done
                    counts.append(copied)
                result = []
                for table, source in zip(tables, counts, strict=True):
                    target = int(await con.fetchval(f"SELECT count(*) FROM {table}"))
                    result.append(Counted(table, source, target))
                wrong = [c for c in result if c.source != c.target]
                if wrong:  # rolls the whole copy back
                    raise TransferError(
                        "counts differ after the copy: "
                        + ", ".join(f"{c.table} {c.source} vs {c.target}" for c in wrong)
                    )
        finally:
            await db.execute("COMMIT")
    return result


async def _copy_table(db: aiosqlite.Connection, con: Any, table: str) -> int:
    types = await _column_types(con, table)
    if not types:
        raise TransferError(f"the PostgreSQL database has no table {table}: is it a relay's?")
    unique = await _unique_keys(con, table)
    if not unique:
        raise TransferError(f"{table}: PostgreSQL has no primary key for it")
    keys = unique[0]
    cursor = await db.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    missing = [n for n in names if n not in types]
    if missing:
        raise TransferError(f"{table}: PostgreSQL lacks the columns {missing}")
    await _refuse_foreign_rows(db, con, table)
    columns = ", ".join(names)
    values = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    rest = [n for n in names if n not in keys]
    on_conflict = (
        f"DO UPDATE SET {', '.join(f'{n} = EXCLUDED.{n}' for n in rest)}" if rest else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES ({values})"
        f" ON CONFLICT ({', '.join(keys)}) {on_conflict}"
    )
    convert = [_converter(types[n]) for n in names]
    copied = 0
    while rows := list(await cursor.fetchmany(BATCH)):
        await con.executemany(
            sql, [[c(v) for c, v in zip(convert, row, strict=True)] for row in rows]
        )
        copied += len(rows)
    await cursor.close()
    for column in await _identity_columns(con, table):  # new rows continue after the copied
        await con.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
            f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
        )
    return copied


async def _refuse_foreign_rows(db: aiosqlite.Connection, con: Any, table: str) -> None:
    """The target may hold only rows of this source (a previous run's): each of its unique keys
    (the primary key and the natural ones, such as a user's name or a task's id) must be one the
    SQLite table has too."""
    for key in await _unique_keys(con, table):
        columns = ", ".join(key)
        theirs = {tuple(r) for r in await con.fetch(f"SELECT {columns} FROM {table}")}
        if not theirs:
            return
        ours = {tuple(r) for r in await db.execute_fetchall(f"SELECT {columns} FROM {table}")}
        foreign = len(theirs - ours)
        if foreign:
            raise TransferError(
                f"the PostgreSQL database already holds {foreign} {table} rows this SQLite"
                " database does not have; migrate into an empty database"
            )


async def _unique_keys(con: Any, table: str) -> list[list[str]]:
    """Every unique index's columns, the primary key first."""
    rows = await con.fetch(
        "SELECT i.indexrelid, i.indisprimary, a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = $1::regclass AND i.indisunique"
        " ORDER BY i.indisprimary DESC, i.indexrelid, a.attnum",
        table,
    )
    keys: dict[int, list[str]] = {}
    for row in rows:
        keys.setdefault(row["indexrelid"], []).append(row["attname"])
    return list(keys.values())


async def _column_types(con: Any, table: str) -> dict[str, str]:
    rows = await con.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    return {r["column_name"]: r["data_type"] for r in rows}


async def _identity_columns(con: Any, table: str) -> list[str]:
    rows = await con.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = $1 AND is_identity = 'YES'",
        table,
    )
    return [r["column_name"] for r in rows]


def _converter(pg_type: str) -> Callable[[Any], Any]:
    """SQLite's loose types to what asyncpg expects for the PostgreSQL column."""
    if pg_type in ("json", "jsonb"):
        return lambda v: orjson.loads(v) if isinstance(v, str | bytes) else v
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v: None if v is None else int(v)
    if pg_type in ("double precision", "real", "numeric"):
        return lambda v: None if v is None else float(v)
    if pg_type == "boolean":
        return lambda v: None if v is None else bool(v)
    if pg_type == "text":
        return lambda v: None if v is None else str(v)
    return lambda v: v
