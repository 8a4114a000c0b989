"""The dashboard's secrets: HS256 JWTs (by hand, with hmac and base64), the signing key kept in
the store (shared by every relay on it), and session cookie values.

A JWT here is exactly `base64url(header).base64url(claims).base64url(HMAC-SHA256)`, unpadded,
with the header `{"alg": "HS256", "typ": "JWT"}`. `decode` accepts only that algorithm (no
`none`, no RS256 with the key as a "public key"), compares the signature in constant time, and
needs `sub`, `iat` and `exp` with `exp` in the future and at most 24 h after `iat`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from relay.store import Store

log = logging.getLogger("relay.auth")

ALGORITHM = "HS256"
MAX_LIFETIME_S = 24 * 3600
SECRET_FILE = "jwt.secret"
SECRET_BYTES = 32
MAX_TOKEN_CHARS = 4096
_HEADER = {"alg": ALGORITHM, "typ": "JWT"}


class InvalidToken(Exception):
    """Why a token is refused; for the log, never the token itself."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or "=" in text:
        raise InvalidToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None


def _sign(secret: bytes, signing_input: str) -> bytes:
    return hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()


def encode(claims: Mapping[str, Any], secret: bytes) -> str:
    head = _b64(orjson.dumps(_HEADER))
    body = _b64(orjson.dumps(dict(claims)))
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{_b64(_sign(secret, signing_input))}"


def issue(subject: str, *, now: float, lifetime_s: float, secret: bytes, **extra: Any) -> str:
    """A token for `subject` from now, for at most 24 h."""
    iat = int(now)
    exp = iat + int(max(1, min(lifetime_s, MAX_LIFETIME_S)))
    return encode({"sub": subject, "iat": iat, "exp": exp, **extra}, secret)


def decode(token: str, secret: bytes, *, now: float) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken otherwise."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise InvalidToken("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed")
    head_b64, body_b64, sig_b64 = parts
    header = _json(_unb64(head_b64))
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("algorithm is not HS256")
    if header.get("typ", "JWT") != "JWT" or "crit" in header:
        raise InvalidToken("unsupported header")
    expected = _sign(secret, f"{head_b64}.{body_b64}")
    if not hmac.compare_digest(expected, _unb64(sig_b64)):
        raise InvalidToken("bad signature")
    claims = _json(_unb64(body_b64))
    sub, iat, exp = claims.get("sub"), claims.get("iat"), claims.get("exp")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("no subject")
    if not (isinstance(iat, int | float) and isinstance(exp, int | float)) or (
        isinstance(iat, bool) or isinstance(exp, bool)
    ):
        raise InvalidToken("no iat or exp")
    if exp - iat > MAX_LIFETIME_S:
        raise InvalidToken("lifetime over 24 h")
    if now >= exp:
        raise InvalidToken("expired")
    if iat > now + 60:  # a minute for clocks of several relays
        raise InvalidToken("issued in the future")
    return claims


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidToken("not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("not a JSON object")
    return value


async def signing_key(store: Store, data_dir: Path, now: float) -> bytes:
    """The token signing key, kept in the store so every relay on one database signs and checks
    with the same key. Made at the first start; a `data_dir/jwt.secret` an earlier version made
    becomes the stored key, so tokens already out stay valid."""
    proposed = _key_file(data_dir) or secrets.token_bytes(SECRET_BYTES)
    return await store.shared_secret("jwt", proposed, now)


def _key_file(data_dir: Path) -> bytes | None:
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        log.warning("%s does not hold a %d-byte hex key; a new key is made", path, SECRET_BYTES)
        return None
    return secret


def new_session_value() -> str:
    """A session cookie value: 256 random bits."""
    return secrets.token_urlsafe(32)


def session_digest(value: str) -> str:
    """What the store keeps of a cookie value. 256 random bits need no slow hash."""
    return hashlib.sha256(value.encode()).hexdigest()
