"""What a library raises when a copy cannot be written or removed: the copier retries it."""

from __future__ import annotations

from relay.errors import StorageError

__all__ = ["StorageError"]
