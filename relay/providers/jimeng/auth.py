"""Volcengine's HMAC-SHA256 V4 request signature (spec/providers/jimeng.md, "Auth"), pure.

Written with the standard library: the scheme is a dozen lines of hashing, and the page's test
vector pins every intermediate value. It differs from AWS SigV4 in small ways that a borrowed
implementation would get wrong: the secret is used without an "AWS4" prefix, the algorithm name
is "HMAC-SHA256", the scope ends in "request", and the body hash travels as X-Content-Sha256.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

ALGORITHM = "HMAC-SHA256"
REGION = "cn-north-1"
SERVICE = "cv"
TERMINATOR = "request"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(value: str) -> str:
    """RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are; a space is %20, never +."""
    return quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted by key, then value; both percent-encoded."""
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(pairs))


def canonical_host(host: str) -> str:
    """The host as signed: the default ports are left out, as clients leave them out of Host."""
    for port in (":443", ":80"):
        if host.endswith(port):
            return host[: -len(port)]
    return host


def date_key(secret_key: str, short_date: str) -> bytes:
    """kDate: the secret as it is, with no "AWS4" prefix."""
    return _hmac(secret_key.encode("utf-8"), short_date)


def signing_key(secret_key: str, short_date: str) -> bytes:
    """kSigning: kDate, then the region, the service and "request"."""
    key = date_key(secret_key, short_date)
    for part in (REGION, SERVICE, TERMINATOR):
        key = _hmac(key, part)
    return key


@dataclass(frozen=True)
class Signature:
    """Every step of one signature; `headers` is what goes on the wire."""

    x_date: str
    body_hash: str
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    signature: str
    authorization: str
    headers: Mapping[str, str]

    def __repr__(self) -> str:  # the signature is a credential for 15 minutes
        return "Signature(<redacted>)"


def sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    when: datetime,
) -> Signature:
    """Sign a request whose `headers` hold at least Content-Type and Host.

    X-Date and X-Content-Sha256 are added here. Content-Type, Host and every X-* header are
    signed. `body` must be the exact bytes that will be sent.
    """
    x_date = when.strftime("%Y%m%dT%H%M%SZ")
    short_date = x_date[:8]
    body_hash = sha256_hex(body)
    send = {**headers, "X-Date": x_date, "X-Content-Sha256": body_hash}
    signed: dict[str, str] = {}
    for name, value in send.items():
        lower = name.lower()
        if lower in ("content-type", "host") or lower.startswith("x-"):
            value = value.strip()
            signed[lower] = canonical_host(value) if lower == "host" else value
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(path or "/", safe="/-_.~"),
            canonical_query(query),
            canonical_headers,
            signed_headers,
            body_hash,
        ]
    )
    scope = f"{short_date}/{REGION}/{SERVICE}/{TERMINATOR}"
    string_to_sign = "\n".join(
        [ALGORITHM, x_date, scope, sha256_hex(canonical_request.encode("utf-8"))]
    )
    signature = hmac.new(
        signing_key(secret_key, short_date), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(
        x_date=x_date,
        body_hash=body_hash,
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        signed_headers=signed_headers,
        signature=signature,
        authorization=authorization,
        headers={**send, "Authorization": authorization},
    )
