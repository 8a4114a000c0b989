"""Test-only reads and writes of the store's rows, straight in SQL: what the relay itself never
does (set a column to stage a case, count rows), kept out of the Store interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relay.store import Copy, Store
from relay.store.rows import COPY_COLUMNS
from relay.store.sqlite import SqliteStore

JSON_COLUMNS = {"upstream_state", "request"}


def _sqlite(store: Store) -> SqliteStore:
    assert isinstance(store, SqliteStore), "these helpers speak SQLite"
    return store


def _encoded(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if k in JSON_COLUMNS else v for k, v in values.items()}


async def update_task(store: Store, task_id: str, values: Mapping[str, Any]) -> bool:
    encoded = _encoded(values)
    sets = ", ".join(f"{k} = :{k}" for k in encoded)
    cur = await _sqlite(store)._db.execute(
        f"UPDATE tasks SET {sets} WHERE id = :_id", {**encoded, "_id": task_id}
    )
    return cur.rowcount == 1


async def insert_task(store: Store, values: Mapping[str, Any]) -> None:
    encoded = _encoded(values)
    names = ", ".join(encoded)
    marks = ", ".join(f":{k}" for k in encoded)
    await _sqlite(store)._db.execute(f"INSERT INTO tasks ({names}) VALUES ({marks})", encoded)


async def copies_of(store: Store, task_id: str) -> list[Copy]:
    rows = await _sqlite(store)._db.execute_fetchall(
        f"SELECT {COPY_COLUMNS} FROM copies WHERE task_id = ?", (task_id,)
    )
    return [Copy(*row) for row in rows]


async def pending_deliveries(store: Store) -> int:
    rows = await _sqlite(store)._db.execute_fetchall("SELECT count(*) FROM webhook_deliveries")
    return int(next(iter(rows))[0])


async def pragma(store: Store, name: str) -> Any:
    rows = list(await _sqlite(store)._db.execute_fetchall(f"PRAGMA {name}"))
    return rows[0][0] if rows else None


async def applied_migrations(store: Store) -> list[str]:
    rows = await _sqlite(store)._db.execute_fetchall("SELECT name FROM migrations ORDER BY name")
    return [row[0] for row in rows]
