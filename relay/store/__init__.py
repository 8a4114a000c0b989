"""The task store: the one interface the relay keeps its state behind, and `open_store(url)`.

All SQL lives under this package: SQLite in sqlite/, PostgreSQL (several relays, one database)
in postgres/. Every backend implements `Store`; one contract suite (tests/store/) runs over each.
Writes are named for what happened (a task was created, an upstream accepted it, a poll brought
news, a task finished), never "set these columns", so callers do not know the schema and a
backend may keep things its own way.

Guarantees every backend keeps:
- The task row exists before its upstream call (`create_task`), under a submit lease: a process
  that dies before `record_submitted` leaves a row `stale_submissions` finds, never a job
  submitted twice.
- Polling is claimed with leases (`claim_due`): two processes never refresh one task at once.
  `record_poll`, `reschedule` and `finish` take the lease they hold and do nothing without it.
- `finish` is the one transition out of queued/in_progress: it succeeds once, whoever tries, and
  writes the task's webhook deliveries and copy jobs in the same transaction.
- When the storage cannot serve a call (a full disk, the write lock held elsewhere past the
  write budget, an I/O error) the call raises `relay.errors.StorageUnavailable` (503
  `storage_unavailable`) and has changed nothing, so it may be retried; reads do not wait for
  writes, so they go on while writes fail.
- A change that takes a right away from a user (a new password, disabling, revoking admin)
  ends that user's sessions in the same transaction; a disabled user's sessions and stored keys
  are not found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from relay.domain import Outcome, Task
from relay.errors import ConfigError
from relay.store.rows import (
    ApiKey,
    Copy,
    Delivery,
    HealthChange,
    NewDelivery,
    NewTask,
    Session,
    User,
)
from relay.store.sqlite import SqliteStore

__all__ = [
    "ApiKey",
    "Copy",
    "Delivery",
    "HealthChange",
    "NewDelivery",
    "NewTask",
    "Session",
    "Store",
    "User",
    "open_store",
    "sqlite_url",
]

POSTGRES_EXTRA = (
    "store.url: a postgresql:// URL needs asyncpg, which the postgres extra installs:"
    " pip install 'video-relay[postgres]'"
)


class Store(Protocol):
    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the database cannot answer."""

    # --- users and API keys (only hashes of keys) ------------------------------------------

    async def add_user(
        self, name: str, role: str, now: float, password_hash: str | None = None
    ) -> User: ...

    async def ensure_user(self, name: str, role: str, now: float) -> None:
        """Create the user unless it exists (users of static keys, on first use)."""

    async def get_user(self, name: str) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def shared_secret(self, name: str, proposed: bytes, now: float) -> bytes:
        """The secret called `name` every relay on this store uses (the dashboard's token
        signing key): the one stored, or `proposed`, stored now, when there is none yet."""
        ...

    async def password_hash(self, name: str) -> str | None:
        """The stored hash of the user's password; None for no such user or no password."""

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        """A new password (None: API keys only); ends the user's sessions. False: no user."""
        ...

    async def make_admin(self, name: str) -> bool: ...

    async def revoke_admin(self, name: str) -> bool:
        """Back to a plain user; ends the user's sessions."""
        ...

    async def disable_user(self, name: str) -> bool:
        """No more sign-ins, sessions or stored keys for the user; ends their sessions."""
        ...

    async def enable_user(self, name: str) -> bool: ...

    async def remove_user(self, name: str) -> bool:
        """Delete a user with their keys and sessions; their tasks stay."""
        ...

    # --- dashboard sessions (only hashes of cookie values) ---------------------------------

    async def create_session(
        self, user_id: int, sha256: str, *, now: float, expires_at: float
    ) -> int:
        """A sign-in: a new session, named by the digest of its cookie; returns its id (never
        reused)."""
        ...

    async def find_session(self, sha256: str, now: float) -> Session | None:
        """The live session with this digest, of a user who is not disabled."""

    async def get_session(self, session_id: int, now: float) -> Session | None:
        """The live session with this id (what a JWT names), of a user who is not disabled."""

    async def end_session(self, session_id: int) -> bool:
        """Sign-out: the session is gone."""
        ...

    async def purge_sessions(self, now: float) -> int:
        """Delete expired sessions; returns how many."""
        ...

    async def add_key(self, user_id: int, name: str, prefix: str, sha256: str, now: float) -> int:
        """Store a key's digest; returns the key's id."""
        ...

    async def find_key(self, sha256: str) -> ApiKey | None:
        """The active key with this digest (looked up by digest, never by the key), of a user
        who is not disabled."""

    async def list_keys(self, user: str | None = None) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: int, now: float) -> bool: ...

    async def count_active_keys(self) -> int: ...

    # --- tasks: reading -------------------------------------------------------------------

    async def get_task(self, task_id: str, owner: str | None = None) -> Task | None:
        """A task by public id; with `owner`, only if it belongs to that user."""

    async def list_tasks(
        self,
        *,
        owner: str | None,
        after: Task | None,
        limit: int,
        descending: bool,
        prompt_contains: str | None = None,
    ) -> list[Task]:
        """A page in created_at order; ties go by creation sequence in the same direction, so
        "newest first" holds inside one second too. `owner=None` means everyone's.
        `prompt_contains`: only prompts holding this text, case-insensitively, every character
        taken literally (`%`, `_` and `\\` are no wildcards)."""
        ...

    async def count_active_by_channel(self) -> dict[str, int]:
        """Queued and running tasks per channel (the in-flight counts of every process)."""
        ...

    async def count_by_status(self) -> dict[str, int]:
        """Tasks per status (every process's); a status with no task is 0 or missing."""
        ...

    # --- tasks: what happens to them -------------------------------------------------------

    async def create_task(self, task: NewTask, *, limit: int = 0) -> bool:
        """Write a queued task before its upstream call, under the submitter's lease; False
        (nothing written) when its channel already runs `limit` tasks (0: no limit). The count
        and the write are one step for every relay on the store: max_in_flight holds."""
        ...

    async def move_to_channel(
        self, task_id: str, *, channel: str, provider: str, upstream_model: str, limit: int = 0
    ) -> bool:
        """Failover at submit: the next channel is trying the task; False when that channel
        runs `limit` tasks already (the task stays where it was)."""
        ...

    async def record_submitted(
        self,
        task_id: str,
        *,
        upstream_id: str,
        upstream_state: Mapping[str, Any],
        seconds: str,
        size: str,
        status: str,
        progress: int,
        now: float,
        next_poll_at: float,
        interval: float,
    ) -> Task | None:
        """An upstream accepted the job: its id and first state, and when to poll it first."""

    async def record_poll(
        self,
        task_id: str,
        lease: str,
        *,
        status: str,
        progress: int,
        upstream_state: Mapping[str, Any] | None,
        seconds: str | None,
        size: str | None,
        now: float,
        next_poll_at: float,
        interval: float,
    ) -> bool:
        """A poll's news for a task still running; resets the error count, ends the lease."""
        ...

    async def reschedule(
        self,
        task_id: str,
        lease: str,
        *,
        next_poll_at: float,
        interval: float,
        poll_errors: int | None = None,
    ) -> bool:
        """A poll brought no news (an error): poll again later; ends the lease."""
        ...

    async def finish(
        self,
        task_id: str,
        lease: str | None,
        outcome: Outcome,
        *,
        now: float,
        progress: int | None = None,
        upstream_state: Mapping[str, Any] | None = None,
        seconds: str | None = None,
        size: str | None = None,
        deliveries: Iterable[NewDelivery] = (),
        copies: Iterable[str] = (),
    ) -> Task | None:
        """The one transition to completed or failed, with its webhook deliveries and copy jobs
        in the same transaction; the finished task, or None when it was not running (or the
        lease is someone else's)."""

    async def delete_task(self, task_id: str) -> bool:
        """Remove a task with its idempotency keys and copy jobs."""
        ...

    # --- polling --------------------------------------------------------------------------

    async def claim_due(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Task]:
        """Lease up to `limit` submitted, running tasks whose next poll is due."""
        ...

    async def next_due(self, now: float) -> float | None:
        """When the next unleased poll falls due."""

    async def release_leases(self, lease_owner: str) -> None: ...

    async def stale_submissions(self, now: float) -> list[Task]:
        """Tasks whose submit never finished: no upstream id, and the submit lease ran out."""
        ...

    async def overdue(self, created_before: float) -> list[Task]:
        """Submitted tasks still running that were created before the given time."""
        ...

    # --- idempotency keys -----------------------------------------------------------------

    async def find_idempotency_key(
        self, owner: str, key: str, newer_than: float
    ) -> tuple[str, str] | None:
        """(request hash, task id) of this caller's key, if recorded after `newer_than`."""

    async def claim_idempotency_key(
        self, owner: str, key: str, request_hash: str, task_id: str, now: float, ttl_s: float
    ) -> bool:
        """Record (owner, key) -> task id; False when a live entry holds the key already."""
        ...

    async def forget_idempotency_key(self, owner: str, key: str) -> None: ...

    async def purge_idempotency_keys(self, older_than: float) -> None: ...

    # --- the webhook outbox ---------------------------------------------------------------

    async def claim_deliveries(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Delivery]: ...

    async def delivered(self, delivery_id: int) -> None:
        """Done with a delivery: it reached its receiver, or was given up."""

    async def retry_delivery(self, delivery_id: int, at: float, error: str) -> None: ...

    async def next_delivery_at(self) -> float | None: ...

    # --- what several relays share ----------------------------------------------------------

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """Be told ("due", "finished") when another relay submits or finishes a task (PostgreSQL
        LISTEN/NOTIFY); a store with one relay has nobody to hear and never calls."""

    async def publish_health(self, change: HealthChange) -> None:
        """A channel's health as this relay changed it (the newest change wins)."""

    async def health_changes(self, since: float) -> list[HealthChange]:
        """Every channel's health changed after `since`, oldest first."""
        ...

    async def take_token(self, key_id: str, per_minute: int, now: float) -> float:
        """Take a token of a key's rate-limit bucket: 0 when taken, else the seconds until
        one is there."""
        ...

    async def give_token(self, key_id: str, per_minute: int) -> None:
        """Give a token back (the request was refused; refused requests do not count)."""

    # --- stored copies --------------------------------------------------------------------

    async def claim_copies(
        self, *, now: float, lease_owner: str, lease_s: float, limit: int
    ) -> list[Copy]: ...

    async def next_copy_at(self) -> float | None: ...

    async def copy_stored(
        self, task_id: str, variant: str, *, path: str, content_type: str, size: int, now: float
    ) -> bool:
        """Record a finished copy (the video then no longer expires); False when the task or
        its copy job is gone meanwhile (deleted), so the file is an orphan."""
        ...

    async def release_copy_leases(self, lease_owner: str) -> None: ...

    async def renew_copy_lease(
        self, task_id: str, variant: str, lease_owner: str, until: float
    ) -> bool:
        """Keep a copy in progress this relay's until `until` (a long download renews a short
        lease, so a killed relay's copies are taken up soon); False when it is no longer its."""
        ...

    async def retry_copy(self, task_id: str, variant: str, at: float, error: str) -> None: ...

    async def drop_copy(self, task_id: str, variant: str) -> None: ...

    async def stored_copy(self, task_id: str, variant: str) -> Copy | None: ...

    async def stored_copies_oldest_first(self, limit: int) -> list[Copy]: ...

    async def stored_bytes(self) -> int: ...

    async def forget_copy(self, copy: Copy, expired_at: float) -> None:
        """Retention removed a stored copy: the content is no longer the relay's to serve."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


async def open_store(url: str, *, pool_size: int = 10) -> Store:
    """Open (and migrate) the store a URL names: `sqlite:///relative/path.db`,
    `sqlite:////absolute/path.db`, or `postgresql://user:password@host:port/database` (a pool of
    `pool_size` connections; asyncpg, the `postgres` extra, is imported only here)."""
    if url.startswith("sqlite:///"):
        return await SqliteStore.open(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from relay.store.postgres import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise ConfigError([POSTGRES_EXTRA]) from None
        return await PostgresStore.open(url, pool_size=pool_size)
    raise ValueError(
        f"unsupported store URL {url.split(':', 1)[0]!r}: use sqlite:///path or postgresql://..."
    )
