"""Password hashes: scrypt from the standard library, memory-hard, self-describing.

A hash is `scrypt$<log2 N>$<r>$<p>$<salt>$<key>` (salt and key in unpadded base64url), so the
parameters can be raised later without invalidating stored hashes. Today: N = 2^15, r = 8,
p = 1, a 16-byte salt and a 32-byte key. That needs 128 * N * r = 32 MiB of memory per hash and
takes about 0.1 s on one core of a small server: cheap for a person signing in, ruinous for
someone trying a password list on a stolen database (each guess costs the same 32 MiB).

`verify` of an unknown user or a user without a password checks against a fixed dummy hash with
the same parameters, so a login costs the same time whether the name exists or not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

LOG2_N = 15
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 8
MAX_LENGTH = 1024  # characters; longer is no stronger, and costs the hash more input
_SCHEME = "scrypt"


def _maxmem(log2_n: int, r: int, p: int) -> int:
    # OpenSSL refuses by default past 32 MiB; allow what the parameters need, plus room
    return 128 * r * ((1 << log2_n) + p + 2) + 1024 * 1024


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=_maxmem(log2_n, r, p),
        dklen=KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, LOG2_N, R, P)
    return f"{_SCHEME}${LOG2_N}${R}${P}${_b64(salt)}${_b64(key)}"


@lru_cache(maxsize=1)
def _dummy() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify(password: str, stored: str | None) -> bool:
    """Whether the password matches the stored hash; with no hash (no such user, or API keys
    only) the same work is done against a dummy, and the answer is False."""
    target = stored if stored is not None else _dummy()
    try:
        scheme, log2_n, r, p, salt, key = target.split("$")
        if scheme != _SCHEME:
            raise ValueError(scheme)
        expected = _unb64(key)
        derived = _derive(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        _derive(password, b"\0" * SALT_BYTES, LOG2_N, R, P)  # an unreadable hash costs the same
        return False
    return hmac.compare_digest(derived, expected) and stored is not None


def weakness(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if not password.isprintable():
        return "a password may not hold control characters"
    return None
