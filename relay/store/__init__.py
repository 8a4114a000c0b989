"""The task store: SQLite through aiosqlite, behind a narrow interface.

All SQL of the relay lives in this package, so a PostgreSQL store for several relay processes can
later implement the same methods. One connection (one writer), WAL, `synchronous=FULL` (a task the
relay acknowledged survives a power cut), a busy timeout, and migrations as an ordered list of
named steps recorded in the `migrations` table.

Polling is claimed with short leases (`lease_owner`, `lease_until`), so two processes sharing one
database never refresh the same task at once, and terminal transitions are conditional updates
that succeed once.
"""

from __future__ import annotations

from relay.store.rows import ACTIVE, ApiKey, Copy, Delivery, TaskRow, User
from relay.store.schema import MIGRATIONS
from relay.store.store import Store

__all__ = ["ACTIVE", "MIGRATIONS", "ApiKey", "Copy", "Delivery", "Store", "TaskRow", "User"]
