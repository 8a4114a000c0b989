"""Users and API keys (only hashes of keys)."""

from __future__ import annotations

from typing import Any

from relay.store.rows import ApiKey, User
from relay.store.sqlite.connection import Part


class Accounts(Part):
    async def add_user(self, name: str, role: str, now: float) -> User:
        cur = await self._db.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)", (name, role, int(now))
        )
        assert cur.lastrowid is not None
        return User(cur.lastrowid, name, role, int(now))

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        await self._db.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, role, int(now)),
        )

    async def get_user(self, name: str) -> User | None:
        rows = await self._db.read_all(
            "SELECT id, name, role, created_at FROM users WHERE name = ?", (name,)
        )
        return User(*next(iter(rows))) if rows else None

    async def list_users(self) -> list[User]:
        rows = await self._db.read_all("SELECT id, name, role, created_at FROM users ORDER BY name")
        return [User(*row) for row in rows]

    async def add_key(self, user_id: int, name: str, prefix: str, sha256: str, now: float) -> int:
        cur = await self._db.execute(
            "INSERT INTO api_keys (user_id, name, prefix, sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, name, prefix, sha256, int(now)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def find_key(self, sha256: str) -> ApiKey | None:
        """The active key with this hash (lookup by the hash of the secret, never the secret)."""
        row = await self._db.read_one(
            "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE k.sha256 = ? AND k.revoked_at IS NULL",
            (sha256,),
        )
        return ApiKey(*row) if row is not None else None

    async def list_keys(self, user: str | None = None) -> list[ApiKey]:
        sql = (
            "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN users u ON u.id = k.user_id"
        )
        args: tuple[Any, ...] = ()
        if user is not None:
            sql += " WHERE u.name = ?"
            args = (user,)
        rows = await self._db.read_all(sql + " ORDER BY k.id", args)
        return [ApiKey(*row) for row in rows]

    async def revoke_key(self, key_id: int, now: float) -> bool:
        cur = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (int(now), key_id),
        )
        return cur.rowcount == 1

    async def count_active_keys(self) -> int:
        rows = await self._db.read_all("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(next(iter(rows))[0])
