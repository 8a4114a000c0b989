"""Users (password hashes, roles, the disabled flag) and API keys (only hashes of keys)."""

from __future__ import annotations

from typing import Any

from relay.store.rows import ApiKey, User
from relay.store.sqlite.connection import Part

_USER = "SELECT id, name, role, created_at, disabled, password_hash IS NOT NULL FROM users"


def _user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]))


class Accounts(Part):
    async def add_user(
        self, name: str, role: str, now: float, password_hash: str | None = None
    ) -> User:
        cur = await self._db.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role, password_hash, int(now)),
        )
        assert cur.lastrowid is not None
        return User(cur.lastrowid, name, role, int(now), has_password=password_hash is not None)

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        await self._db.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, role, int(now)),
        )

    async def get_user(self, name: str) -> User | None:
        row = await self._db.read_one(_USER + " WHERE name = ?", (name,))
        return _user(row) if row is not None else None

    async def list_users(self) -> list[User]:
        rows = await self._db.read_all(_USER + " ORDER BY name")
        return [_user(row) for row in rows]

    async def shared_secret(self, name: str, proposed: bytes, now: float) -> bytes:
        await self._db.execute(
            "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, proposed.hex(), now),
        )
        row = await self._db.read_one("SELECT value FROM secrets WHERE name = ?", (name,))
        assert row is not None
        return bytes.fromhex(row[0])

    async def password_hash(self, name: str) -> str | None:
        row = await self._db.read_one("SELECT password_hash FROM users WHERE name = ?", (name,))
        return row[0] if row is not None else None

    # each change that takes a right away ends the user's sessions in the same transaction

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        return await self._change_user(
            name, "password_hash = ?", (password_hash,), end_sessions=True
        )

    async def make_admin(self, name: str) -> bool:
        return await self._change_user(name, "role = 'admin'", (), end_sessions=False)

    async def revoke_admin(self, name: str) -> bool:
        return await self._change_user(name, "role = 'user'", (), end_sessions=True)

    async def disable_user(self, name: str) -> bool:
        return await self._change_user(name, "disabled = 1", (), end_sessions=True)

    async def enable_user(self, name: str) -> bool:
        return await self._change_user(name, "disabled = 0", (), end_sessions=False)

    async def remove_user(self, name: str) -> bool:
        # keys and sessions go with the user (ON DELETE CASCADE); the tasks stay, by owner name
        cur = await self._db.execute("DELETE FROM users WHERE name = ?", (name,))
        return cur.rowcount == 1

    async def _change_user(
        self, name: str, assignment: str, args: tuple[Any, ...], *, end_sessions: bool
    ) -> bool:
        async with self._db.transaction():
            cur = await self._db.execute(
                f"UPDATE users SET {assignment} WHERE name = ?",  # noqa: S608 (constants only)
                (*args, name),
            )
            if cur.rowcount != 1:
                return False
            if end_sessions:
                await self._db.execute(
                    "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)",
                    (name,),
                )
            return True

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
            "WHERE k.sha256 = ? AND k.revoked_at IS NULL AND u.disabled = 0",
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
