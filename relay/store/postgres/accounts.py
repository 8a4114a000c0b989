"""Users (password hashes, roles, the disabled flag) and API keys (only hashes of keys)."""

from __future__ import annotations

from typing import Any

from relay.store.postgres.connection import Args, Part, affected
from relay.store.rows import ApiKey, User

_KEYS = (
    "SELECT k.id, u.name, u.role, k.name, k.prefix, k.created_at, k.revoked_at"
    " FROM api_keys k JOIN users u ON u.id = k.user_id"
)


_USER = "SELECT id, name, role, created_at, disabled, password_hash IS NOT NULL FROM users"


def _user(row: Any) -> User:
    return User(int(row[0]), row[1], row[2], int(row[3]), bool(row[4]), bool(row[5]))


class Accounts(Part):
    async def add_user(
        self, name: str, role: str, now: float, password_hash: str | None = None
    ) -> User:
        user_id = await self._pool.fetchval(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            name,
            role,
            password_hash,
            int(now),
        )
        return User(int(user_id), name, role, int(now), has_password=password_hash is not None)

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        await self._pool.execute(
            "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING",
            name,
            role,
            int(now),
        )

    async def get_user(self, name: str) -> User | None:
        row = await self._pool.fetchrow(_USER + " WHERE name = $1", name)
        return _user(row) if row is not None else None

    async def list_users(self) -> list[User]:
        # byte order, as SQLite sorts, whatever the database's collation
        rows = await self._pool.fetch(_USER + ' ORDER BY name COLLATE "C"')
        return [_user(row) for row in rows]

    async def shared_secret(self, name: str, proposed: bytes, now: float) -> bytes:
        await self._pool.execute(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING",
            name,
            proposed.hex(),
            now,
        )
        value = await self._pool.fetchval("SELECT value FROM secrets WHERE name = $1", name)
        return bytes.fromhex(value)

    async def password_hash(self, name: str) -> str | None:
        value = await self._pool.fetchval("SELECT password_hash FROM users WHERE name = $1", name)
        return str(value) if value is not None else None

    # each change that takes a right away ends the user's sessions in the same transaction

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        return await self._change_user(name, "password_hash = $2", password_hash, ends=True)

    async def make_admin(self, name: str) -> bool:
        return await self._change_user(name, "role = 'admin'", ends=False)

    async def revoke_admin(self, name: str) -> bool:
        return await self._change_user(name, "role = 'user'", ends=True)

    async def disable_user(self, name: str) -> bool:
        return await self._change_user(name, "disabled = true", ends=True)

    async def enable_user(self, name: str) -> bool:
        return await self._change_user(name, "disabled = false", ends=False)

    async def remove_user(self, name: str) -> bool:
        # keys and sessions go with the user (ON DELETE CASCADE); the tasks stay, by owner name
        return affected(await self._pool.execute("DELETE FROM users WHERE name = $1", name)) == 1

    async def _change_user(self, name: str, assignment: str, *args: Any, ends: bool) -> bool:
        async with self._pool.acquire() as con, con.transaction():
            user_id = await con.fetchval(
                f"UPDATE users SET {assignment} WHERE name = $1 RETURNING id",  # noqa: S608
                name,
                *args,
            )
            if user_id is None:
                return False
            if ends:
                await con.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
            return True

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
            _KEYS + " WHERE k.sha256 = $1 AND k.revoked_at IS NULL AND NOT u.disabled", sha256
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
