"""Dashboard sessions: rows named by the SHA-256 of their cookie value, never the value."""

from __future__ import annotations

from typing import Any

from relay.store.rows import Session
from relay.store.sqlite.connection import Part

_LIVE = (
    "SELECT s.id, u.name, u.role, s.created_at, s.expires_at"
    " FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.expires_at > ? AND u.disabled = 0"
)


class Sessions(Part):
    async def create_session(
        self, user_id: int, sha256: str, *, now: float, expires_at: float
    ) -> int:
        cur = await self._db.execute(
            "INSERT INTO sessions (user_id, sha256, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (user_id, sha256, now, expires_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def find_session(self, sha256: str, now: float) -> Session | None:
        return self._session(await self._db.read_one(_LIVE + " AND s.sha256 = ?", (now, sha256)))

    async def get_session(self, session_id: int, now: float) -> Session | None:
        return self._session(await self._db.read_one(_LIVE + " AND s.id = ?", (now, session_id)))

    async def end_session(self, session_id: int) -> bool:
        cur = await self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cur.rowcount == 1

    async def purge_sessions(self, now: float) -> int:
        cur = await self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        return cur.rowcount

    @staticmethod
    def _session(row: Any) -> Session | None:
        return Session(*row) if row is not None else None
