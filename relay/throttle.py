"""Counting failures in a sliding window: failed sign-ins per user name and per client address,
failed authentications per client address.

Kept in the process's memory: a restart forgets them, and with several relays behind one
address each counts its own (scale-out.md); the limits stay small either way. Memory is
bounded: past `max_keys` counters the oldest are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class Failures:
    """Failures per key within the last `window_s` seconds; `limit` of them block the key until
    the oldest leaves the window."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._seen.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[key]
            return None
        return times

    def blocked_for(self, key: str, now: float) -> float | None:
        """Seconds until the key may try again, or None when it may now."""
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return None
        return times[-self.limit] + self.window_s - now

    def fail(self, key: str, now: float) -> None:
        times = self._recent(key, now)
        if times is None:
            times = self._seen[key] = deque(maxlen=self.limit)
        times.append(now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

    def clear(self, key: str) -> None:
        self._seen.pop(key, None)
