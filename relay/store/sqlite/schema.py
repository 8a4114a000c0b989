"""The schema, as an ordered list of named migration steps recorded in the `migrations` table."""

from __future__ import annotations

from collections.abc import Iterable

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_users_keys",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
            password_hash TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            prefix TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        """,
    ),
    (
        "0002_tasks",
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            channel TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            upstream_model TEXT NOT NULL,
            upstream_id TEXT,
            upstream_state TEXT NOT NULL DEFAULT '{}',
            request TEXT NOT NULL,
            prompt TEXT NOT NULL,
            seconds TEXT NOT NULL,
            size TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
            progress INTEGER NOT NULL DEFAULT 0,
            error_code TEXT,
            error_message TEXT,
            remixed_from TEXT,
            created_at INTEGER NOT NULL,
            submitted_at REAL,
            updated_at REAL NOT NULL,
            completed_at REAL,
            expires_at REAL,
            next_poll_at REAL,
            poll_interval REAL,
            poll_errors INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until REAL
        );
        CREATE INDEX tasks_by_owner ON tasks (owner, created_at, seq);
        CREATE INDEX tasks_by_time ON tasks (created_at, seq);
        CREATE INDEX tasks_due ON tasks (next_poll_at)
            WHERE status IN ('queued', 'in_progress');
        CREATE TABLE idempotency_keys (
            owner TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            task_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, key)
        );
        """,
    ),
    (
        "0003_webhook_outbox",
        """
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            created_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_error TEXT
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
        """,
    ),
    (
        "0004_stored_copies",
        """
        CREATE TABLE copies (
            task_id TEXT NOT NULL,
            variant TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'stored')),
            path TEXT,
            content_type TEXT,
            bytes INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            lease_owner TEXT,
            lease_until REAL,
            created_at REAL NOT NULL,
            stored_at REAL,
            last_error TEXT,
            PRIMARY KEY (task_id, variant)
        );
        CREATE INDEX copies_due ON copies (next_attempt_at) WHERE state = 'pending';
        CREATE INDEX copies_by_age ON copies (stored_at) WHERE state = 'stored';
        """,
    ),
    (
        # sessions.id is AUTOINCREMENT: never reused, so a JWT naming an ended session cannot
        # come back to life with a later sign-in
        "0005_sign_in",
        """
        ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions (user_id);
        CREATE INDEX sessions_by_expiry ON sessions (expires_at);
        """,
    ),
    (
        "0006_shared_state",
        """
        CREATE INDEX tasks_active_by_channel ON tasks (channel)
            WHERE status IN ('queued', 'in_progress');
        CREATE TABLE channel_health (
            channel TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            until REAL,
            why TEXT NOT NULL DEFAULT '',
            instance TEXT NOT NULL,
            changed_at REAL NOT NULL
        );
        """,
    ),
    (
        "0007_secrets",
        """
        CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
)


def statements(sql: str) -> Iterable[str]:
    return (part.strip() for part in sql.split(";") if part.strip())
