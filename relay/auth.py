"""API keys: who is calling, and how fast they may create.

Keys are `sk-relay-` + 256 random bits. Only a SHA-256 of each key is kept (the config may give
either the key or its digest). A key this long needs no slow hash: guessing its digest is as hard
as guessing the key. Static keys are compared in constant time, all of them every time; stored
keys are looked up by digest, so the secret itself is never compared.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

from relay.config import StaticKey
from relay.domain import Principal
from relay.errors import AuthenticationFailed, RateLimitExceeded
from relay.store import Store

KEY_PREFIX = "sk-relay-"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """Enough of a key to recognise it in `relay keys list`, not enough to use it."""
    return key[: len(KEY_PREFIX) + 6]


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthenticationFailed("missing API key: send it as 'Authorization: Bearer <key>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationFailed("malformed Authorization header: use 'Bearer <key>'")
    return token


class Authenticator:
    def __init__(self, store: Store, static_keys: Iterable[StaticKey]) -> None:
        self.store = store
        self.static = tuple(static_keys)
        # each static key's caller, made once (a Principal is immutable)
        self._static = tuple(
            (key.sha256, Principal(key.user, key.role, f"static:{key.name}")) for key in self.static
        )
        self._known_users: set[str] = set()

    async def authenticate(self, header: str | None) -> Principal:
        key = bearer_token(header)
        key_digest = digest(key)
        match: Principal | None = None
        for sha256, principal in self._static:  # all of them, each in constant time
            if hmac.compare_digest(sha256, key_digest):
                match = principal
        if match is not None:
            if match.user not in self._known_users:
                await self.store.ensure_user(match.user, "user", time.time())
                self._known_users.add(match.user)
            return match
        stored = await self.store.find_key(key_digest)
        if stored is None:
            raise AuthenticationFailed("invalid API key")
        return Principal(stored.user, stored.role, f"db:{stored.id}")


class RateLimiter:
    """A token bucket per key: `per_minute` creates, refilled evenly; 0 turns it off.

    A request takes its token before it is submitted (so concurrent requests cannot all pass) and
    gives it back when it is rejected (so only accepted requests count).
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)

    def take(self, key: str, now: float) -> None:
        if self.per_minute <= 0:
            return
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            wait = (1.0 - tokens) * 60.0 / self.per_minute
            raise RateLimitExceeded(
                f"rate limit of {self.per_minute} creates per minute reached for this key",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # forget keys whose buckets have refilled
            for k in [k for k in self._buckets if self._tokens(k, now) >= self.per_minute]:
                del self._buckets[k]

    def give_back(self, key: str) -> None:
        if self.per_minute <= 0 or key not in self._buckets:
            return
        tokens, at = self._buckets[key]
        self._buckets[key] = (min(float(self.per_minute), tokens + 1.0), at)
