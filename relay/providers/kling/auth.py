"""Kling's request token: a short-lived HS256 JWT signed with the account's SecretKey.

Built with the standard library: the token is three base64url parts, and pulling in a JWT
package for one fixed algorithm and three claims is not worth the dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

from relay.providers.base import now

LIFETIME_S = 1800
NOT_BEFORE_SKEW_S = 5  # nbf in the past, so a host whose clock runs ahead still accepts it
RENEW_BEFORE_S = 60  # a token this close to exp may expire on the way to the upstream

_HEADER = {"alg": "HS256", "typ": "JWT"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def encode(access_key: str, secret_key: str, exp: int, nbf: int) -> str:
    """The token for these claims; the page's test vector pins the exact bytes."""
    payload = {"iss": access_key, "exp": exp, "nbf": nbf}
    signing_input = b64url(_compact(_HEADER)) + "." + b64url(_compact(payload))
    signature = hmac.new(
        secret_key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    return signing_input + "." + b64url(signature)


class TokenCache:
    """One channel's current token, rebuilt about a minute before it expires."""

    def __init__(self, access_key: str, secret_key: str, clock: Callable[[], float] = now) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._token = ""
        self._exp = 0

    def token(self) -> str:
        current = int(self._clock())
        if current >= self._exp - RENEW_BEFORE_S:
            self._exp = current + LIFETIME_S
            self._token = encode(
                self._access_key, self._secret_key, self._exp, current - NOT_BEFORE_SKEW_S
            )
        return self._token

    def __repr__(self) -> str:  # never show the key or the token in a log line or a traceback
        return "TokenCache(<redacted>)"
