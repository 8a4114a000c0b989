"""Dashboard sessions: rows named by the SHA-256 of their cookie value, never the value."""

from __future__ import annotations

from typing import Any

from relay.store.postgres.connection import Part, affected
from relay.store.rows import Session

_LIVE = (
    "SELECT s.id, u.name, u.role, s.created_at, s.expires_at"
    " FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.expires_at > $1 AND NOT u.disabled"
)


class Sessions(Part):
    async def create_session(
        self, user_id: int, sha256: str, *, now: float, expires_at: float
    ) -> int:
        session_id = await self._pool.fetchval(
            "INSERT INTO sessions (user_id, sha256, created_at, expires_at)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            user_id,
            sha256,
            now,
            expires_at,
        )
        return int(session_id)

    async def find_session(self, sha256: str, now: float) -> Session | None:
        return _session(await self._pool.fetchrow(_LIVE + " AND s.sha256 = $2", now, sha256))

    async def get_session(self, session_id: int, now: float) -> Session | None:
        return _session(await self._pool.fetchrow(_LIVE + " AND s.id = $2", now, session_id))

    async def end_session(self, session_id: int) -> bool:
        tag = await self._pool.execute("DELETE FROM sessions WHERE id = $1", session_id)
        return affected(tag) == 1

    async def purge_sessions(self, now: float) -> int:
        tag = await self._pool.execute("DELETE FROM sessions WHERE expires_at <= $1", now)
        return affected(tag)


def _session(row: Any) -> Session | None:
    if row is None:
        return None
    return Session(int(row[0]), row[1], row[2], float(row[3]), float(row[4]))
