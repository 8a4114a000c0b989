"""The asyncpg pool every part of the PostgreSQL store shares, and the two helpers its SQL needs:
numbered parameters for queries built from a dict, and the row count of a command tag."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


async def setup_connection(con: asyncpg.Connection) -> None:
    """Run on every new pool connection: `json` columns go in and out as Python values."""
    await con.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        format="text",
    )


class Args:
    """Positional parameters collected while a query is built: `args(value)` returns its `$n`."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def affected(tag: str) -> int:
    """The row count of a command tag such as 'UPDATE 1' or 'INSERT 0 1'."""
    return int(tag.rsplit(" ", 1)[-1])


class Part:
    """What every part of the Store shares: the pool (each call takes a connection and gives it
    back; a transaction holds one connection from BEGIN to COMMIT)."""

    _pool: asyncpg.Pool
