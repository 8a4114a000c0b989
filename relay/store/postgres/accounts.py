"""Users and API keys (only hashes of keys)."""

from __future__ import annotations

from relay.store.postgres.connection import Args, Part, affected
from relay.store.rows import ApiKey, User

_KEYS = (
    "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at"
    " FROM api_keys k JOIN users u ON u.id = k.user_id"
)


class Accounts(Part):
    async def add_user(self, name: str, role: str, now: float) -> User:
        user_id = await self._pool.fetchval(
            "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3) RETURNING id",
            name,
            role,
            int(now),
        )
        return User(int(user_id), name, role, int(now))

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        await self._pool.execute(
            "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING",
            name,
            role,
            int(now),
        )

    async def get_user(self, name: str) -> User | None:
        row = await self._pool.fetchrow(
            "SELECT id, name, role, created_at FROM users WHERE name = $1", name
        )
        return User(*row) if row is not None else None

    async def list_users(self) -> list[User]:
        # byte order, as SQLite sorts, whatever the database's collation
        rows = await self._pool.fetch(
            'SELECT id, name, role, created_at FROM users ORDER BY name COLLATE "C"'
        )
        return [User(*row) for row in rows]

    async def add_key(self, user_id: int, name: str, prefix: str, sha256: str, now: float) -> int:
        key_id = await self._pool.fetchval(
            "INSERT INTO api_keys (user_id, name, prefix, sha256, created_at)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            user_id,
            name,
            prefix,
            sha256,
            int(now),
        )
        return int(key_id)

    async def find_key(self, sha256: str) -> ApiKey | None:
        """The active key with this hash (lookup by the hash of the secret, never the secret)."""
        row = await self._pool.fetchrow(
            _KEYS + " WHERE k.sha256 = $1 AND k.revoked_at IS NULL", sha256
        )
        return ApiKey(*row) if row is not None else None

    async def list_keys(self, user: str | None = None) -> list[ApiKey]:
        args = Args()
        sql = _KEYS
        if user is not None:
            sql += f" WHERE u.name = {args(user)}"
        rows = await self._pool.fetch(sql + " ORDER BY k.id", *args.values)
        return [ApiKey(*row) for row in rows]

    async def revoke_key(self, key_id: int, now: float) -> bool:
        tag = await self._pool.execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            int(now),
            key_id,
        )
        return affected(tag) == 1

    async def count_active_keys(self) -> int:
        count = await self._pool.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(count)
