"""Signing in to the dashboard, free of aiohttp: passwords -> a session and a token; a session
cookie or a token -> a `Principal`; and the throttles that keep guessing slow.

- A sign-in checks the password (scrypt, relay/passwords.py) and makes a new session every time:
  a 256-bit cookie value, of which the store keeps only the SHA-256, expiring after
  `[dashboard] session_hours`. A cookie the request already carried is ended (rotation).
- The JWT a sign-in answers with (relay/tokens.py) names its session (`sid`): it works while the
  session does, so signing out, a new password, disabling the user or revoking admin end the
  token with the session, and the role is read afresh on each request.
- Throttles (in memory, relay/throttle.py): more than 5 failed sign-ins within 5 minutes for one
  user name or from one client address answer 429 before any password is checked; 20 failed
  authentications a minute from one address (a wrong key, token or cookie) answer 429 too, but a
  valid credential is checked first and always accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay import passwords, tokens
from relay.config import DashboardConfig
from relay.domain import Principal
from relay.errors import AuthenticationFailed, RateLimitExceeded
from relay.store import Store, User
from relay.throttle import Failures

log = logging.getLogger("relay.auth")

SIGN_IN_LIMIT = 5  # failures per user name or address ...
SIGN_IN_WINDOW_S = 300.0  # ... within this many seconds
AUTH_FAILURE_LIMIT = 20  # failed authentications per address ...
AUTH_FAILURE_WINDOW_S = 60.0  # ... within this many seconds
HASHES_AT_ONCE = 2  # each scrypt takes 32 MiB; a burst of sign-ins waits rather than piles up
WRONG_PAIR = "wrong username or password"
MAX_NAME_KEY = 128  # characters of a user name a throttle remembers (names have at most 64)


@dataclass(frozen=True)
class Login:
    user: User
    cookie: str  # the session cookie's value: goes to the client once, never stored
    token: str
    token_expires_at: int
    session_expires_at: float


def principal_of(user: str, role: str) -> Principal:
    # every dashboard sign-in of one user shares one rate-limit bucket
    return Principal(user, role, f"user:{user}")


class SignIn:
    def __init__(
        self,
        store: Store,
        secret: bytes,
        *,
        settings: Callable[[], DashboardConfig],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.secret = secret
        self.settings = settings
        self.clock = clock
        self.by_name = Failures(SIGN_IN_LIMIT, SIGN_IN_WINDOW_S)
        self.by_address = Failures(SIGN_IN_LIMIT, SIGN_IN_WINDOW_S)
        self.bad_credentials = Failures(AUTH_FAILURE_LIMIT, AUTH_FAILURE_WINDOW_S)
        self._hashing = asyncio.Semaphore(HASHES_AT_ONCE)

    # --- signing in and out -------------------------------------------------------------

    async def login(
        self, username: str, password: str, *, address: str, replaces: str | None = None
    ) -> Login:
        now = self.clock()
        name_key = username[:MAX_NAME_KEY]
        waits = [
            self.by_name.blocked_for(name_key, now),
            self.by_address.blocked_for(address, now),
        ]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            raise RateLimitExceeded("too many failed sign-ins; try again later", retry_after=wait)
        # no user name holds a NUL (PostgreSQL text cannot): unknown, with the same cost
        user = await self.store.get_user(username) if "\x00" not in username else None
        stored = await self.store.password_hash(username) if user is not None else None
        async with self._hashing:
            matches = await asyncio.to_thread(passwords.verify, password, stored)
        if not matches or user is None or user.disabled:
            now = self.clock()
            self.by_name.fail(name_key, now)
            self.by_address.fail(address, now)
            log.info("failed sign-in from %s", address)  # not the name: it may be a password
            raise AuthenticationFailed(WRONG_PAIR, code="invalid_credentials")
        self.by_name.clear(name_key)
        if replaces:
            await self.logout(replaces)
        now = self.clock()
        await self.store.purge_sessions(now)
        cookie = tokens.new_session_value()
        session_expires = now + self.settings().session_hours * 3600
        session_id = await self.store.create_session(
            user.id, tokens.session_digest(cookie), now=now, expires_at=session_expires
        )
        token = tokens.issue(
            user.name,
            now=now,
            lifetime_s=session_expires - int(now),
            secret=self.secret,
            sid=session_id,
        )
        claims = tokens.decode(token, self.secret, now=now)
        log.info("%s signed in", user.name)
        return Login(user, cookie, token, int(claims["exp"]), session_expires)

    async def hash_password(self, password: str) -> str:
        """A new password's hash, off the event loop, a couple at a time."""
        async with self._hashing:
            return await asyncio.to_thread(passwords.hash_password, password)

    async def logout(self, cookie: str | None = None, *, session_id: int | None = None) -> bool:
        """End the session a cookie value (or a token's session id) names."""
        if cookie is not None:
            session = await self.store.find_session(tokens.session_digest(cookie), self.clock())
            session_id = session.id if session is not None else None
        if session_id is None:
            return False
        return await self.store.end_session(session_id)

    # --- who is calling -----------------------------------------------------------------

    async def from_cookie(self, cookie: str) -> tuple[Principal, int]:
        """The principal and session id of a session cookie's value."""
        if not cookie or len(cookie) > 256:
            raise _no_session()
        session = await self.store.find_session(tokens.session_digest(cookie), self.clock())
        if session is None:
            raise _no_session()
        return principal_of(session.user, session.role), session.id

    async def from_token(self, token: str) -> tuple[Principal, int]:
        """The principal and session id of a JWT from /api/login."""
        now = self.clock()
        try:
            claims = tokens.decode(token, self.secret, now=now)
        except tokens.InvalidToken as exc:
            log.debug("token refused: %s", exc)
            raise _bad_token() from None
        session_id: Any = claims.get("sid")
        if not isinstance(session_id, int) or isinstance(session_id, bool):
            raise _bad_token()
        session = await self.store.get_session(session_id, now)
        if session is None or session.user != claims["sub"]:
            raise _bad_token()
        if claims["iat"] < int(session.created_at):  # a token never predates its session
            raise _bad_token()
        return principal_of(session.user, session.role), session.id

    # --- failed authentications from one address (keys, tokens, cookies) ----------------------

    def failed(self, address: str) -> float | None:
        """Count a failed authentication; the wait to answer with when the address is over the
        limit (counted before this one), else None."""
        now = self.clock()
        wait = self.bad_credentials.blocked_for(address, now)
        self.bad_credentials.fail(address, now)
        return wait


def _no_session() -> AuthenticationFailed:
    return AuthenticationFailed(
        "not signed in, or the session has ended: sign in again", code="invalid_session"
    )


def _bad_token() -> AuthenticationFailed:
    return AuthenticationFailed(
        "invalid or expired token: sign in again at /api/login (API keys go to /v1)",
        code="invalid_token",
    )
