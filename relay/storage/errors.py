"""What a library raises when a copy cannot be written or removed: the copier retries it."""

from __future__ import annotations


class StorageError(Exception):
    """A copy could not be stored (a short body, the bucket unreachable or refusing)."""
