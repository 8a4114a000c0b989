"""Token buckets kept in this process: the SQLite store's per-key rate limits (one relay owns a
SQLite database, so its own memory is the shared place). The PostgreSQL store keeps the same
buckets in a table, taken with one UPDATE, so they hold across relays."""

from __future__ import annotations

MAX_KEYS = 10_000  # past this many buckets, the full ones are forgotten


class Buckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, per_minute: int, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(per_minute), now))
        return min(float(per_minute), tokens + (now - at) * per_minute / 60.0)

    def take(self, key: str, per_minute: int, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        tokens = self._tokens(key, per_minute, now)
        if tokens < 1.0:
            return (1.0 - tokens) * 60.0 / per_minute
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_KEYS:
            for k in [k for k in self._buckets if self._tokens(k, per_minute, now) >= per_minute]:
                del self._buckets[k]
        return 0.0

    def give(self, key: str, per_minute: int) -> None:
        if key in self._buckets:
            tokens, at = self._buckets[key]
            self._buckets[key] = (min(float(per_minute), tokens + 1.0), at)
