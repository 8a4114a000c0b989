"""What the store takes and hands out besides tasks (relay.domain.Task): users, keys, the
work queued for background workers. The same for every backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: int
    disabled: bool = False  # no sign-in, no session, no stored key works
    has_password: bool = False  # False: the user works with API keys only


@dataclass(frozen=True)
class Session:
    """A dashboard sign-in. The store knows it by the SHA-256 of its cookie value only; `id` is
    what a JWT names (never reused, so a token cannot outlive its session)."""

    id: int
    user: str
    role: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class ApiKey:
    id: int
    user: str
    role: str
    name: str
    prefix: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class NewTask:
    """A task row as it is written before the upstream call: queued, under a submit lease."""

    id: str
    owner: str
    channel: str
    provider: str
    model: str
    upstream_model: str
    request: dict[str, Any]
    prompt: str
    seconds: str
    size: str
    remixed_from: str | None
    created_at: float
    lease_owner: str
    lease_until: float


@dataclass(frozen=True)
class NewDelivery:
    """One webhook event for one receiver, queued when its task finishes."""

    event_id: str
    url: str
    body: str


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    url: str
    body: str
    attempts: int
    created_at: float


@dataclass(frozen=True)
class Copy:
    task_id: str
    variant: str
    state: str  # pending | stored
    path: str | None  # where the storage keeps it (relative to the data directory)
    content_type: str | None
    bytes: int | None
    attempts: int
    created_at: float
    stored_at: float | None


@dataclass(frozen=True)
class HealthChange:
    """A channel's health as one relay last changed it; the others adopt the newest."""

    channel: str
    state: str  # ready | cooling | rate_limited | credentials | quota
    until: float | None  # when the pause ends
    why: str
    instance: str  # which relay changed it
    changed_at: float


COPY_COLUMNS = "task_id, variant, state, path, content_type, bytes, attempts, created_at, stored_at"
