"""The rows the store hands out, and their mapping to and from SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson

ACTIVE = ("queued", "in_progress")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: int


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
    path: str | None  # relative to the data directory
    content_type: str | None
    bytes: int | None
    attempts: int
    created_at: float
    stored_at: float | None


COPY_COLUMNS = "task_id, variant, state, path, content_type, bytes, attempts, created_at, stored_at"


@dataclass(frozen=True)
class TaskRow:
    seq: int
    id: str
    owner: str
    channel: str
    provider: str
    model: str
    upstream_model: str
    upstream_id: str | None
    upstream_state: dict[str, Any]
    request: dict[str, Any]
    prompt: str
    seconds: str
    size: str
    status: str
    progress: int
    error_code: str | None
    error_message: str | None
    remixed_from: str | None
    created_at: int
    submitted_at: float | None
    updated_at: float
    completed_at: float | None
    expires_at: float | None
    next_poll_at: float | None
    poll_interval: float | None
    poll_errors: int
    lease_owner: str | None
    lease_until: float | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


TASK_COLUMNS = [f.name for f in fields(TaskRow)]
JSON_COLUMNS = {"upstream_state", "request"}


def task_row(row: sqlite3.Row) -> TaskRow:
    values = {k: row[k] for k in TASK_COLUMNS}
    for key in JSON_COLUMNS:
        values[key] = orjson.loads(values[key])
    return TaskRow(**values)


def encode(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if k in JSON_COLUMNS else v for k, v in values.items()}
