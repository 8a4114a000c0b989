"""AWS Signature Version 4 for S3-compatible stores, pure and with the standard library.

Two forms: headers on a request the relay sends (`sign_headers`), and a query string for a URL
the content proxy fetches later (`presign`). A few dozen lines of hashing, pinned by AWS's
published example (tests/test_s3.py) and tested against a real server, instead of a client
library with its own HTTP stack and dependencies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def signing_key(secret_key: str, date: str, region: str) -> bytes:
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    return key


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _signature(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    secret_key: str,
    region: str,
    when: datetime,
) -> tuple[str, str, str]:
    """(signature, signed header names, scope) of one canonical request."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    names = sorted(signed)
    canonical = "\n".join(
        [
            method.upper(),
            _encode(path or "/", safe="/-_.~"),
            query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(
        signing_key(secret_key, date, region), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    return signature, ";".join(names), scope


def sign_headers(
    *,
    method: str,
    url: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    payload_hash: str = UNSIGNED,
    access_key: str,
    secret_key: str,
    region: str,
    when: datetime,
) -> dict[str, str]:
    """The headers to send: the given ones, Host, X-Amz-Date, X-Amz-Content-Sha256 and the
    Authorization that signs them all."""
    send = {
        **(headers or {}),
        "Host": _host(url),
        "X-Amz-Date": when.strftime("%Y%m%dT%H%M%SZ"),
        "X-Amz-Content-Sha256": payload_hash,
    }
    signature, names, scope = _signature(
        method=method,
        path=urlsplit(url).path,
        query=canonical_query(query),
        headers=send,
        payload_hash=payload_hash,
        secret_key=secret_key,
        region=region,
        when=when,
    )
    send["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    del send["Host"]  # the HTTP client sends the same Host itself
    return send


def presign(
    *,
    method: str,
    url: str,
    expires_s: int,
    access_key: str,
    secret_key: str,
    region: str,
    when: datetime,
) -> str:
    """`url` with the query-string signature: valid for `expires_s` seconds, for anyone."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    pairs = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{amz_date[:8]}/{region}/{SERVICE}/aws4_request"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires_s)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    signature, _, _ = _signature(
        method=method,
        path=urlsplit(url).path,
        query=canonical_query(pairs),
        headers={"Host": _host(url)},
        payload_hash=UNSIGNED,
        secret_key=secret_key,
        region=region,
        when=when,
    )
    base = url.split("?", 1)[0]
    return f"{base}?{canonical_query(pairs)}&X-Amz-Signature={signature}"
