"""Pure helpers every adapter shares: the rules of providers/README.md in one place.

Sizes and durations snap to what a provider offers; metadata deep-merges into native bodies;
native timestamps (milliseconds, RFC 3339, zone-less local time) become Unix seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relay.domain import Size
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
)

# Keys a client may not set through metadata: they pick the model, or the relay must control them.
CONTROLLED_KEYS = frozenset(
    {
        "model",
        "model_name",
        "req_key",
        "callback_url",
        "api_key",
        "apikey",
        "access_key",
        "secret_key",
        "authorization",
        "token",
        "key",
    }
)

TIERS = ("480p", "720p", "1080p", "4k")


def tier(size: Size) -> str | None:
    """The resolution tier from the short side; None for a bare ratio (use the default tier)."""
    short = size.short_side
    if short is None:
        return None
    if short < 600:
        return "480p"
    if short < 900:
        return "720p"
    if short < 1600:
        return "1080p"
    return "4k"


def snap_ratio(size: Size, allowed: Sequence[str]) -> str:
    """The allowed "a:b" ratio nearest to the size's aspect, by distance of logarithms."""
    target = math.log(size.aspect)

    def distance(ratio: str) -> float:
        a, _, b = ratio.partition(":")
        return abs(math.log(int(a) / int(b)) - target)

    return min(allowed, key=distance)


def snap_seconds(seconds: int, allowed: Iterable[int]) -> int:
    """The nearest allowed duration; a tie takes the longer one."""
    return min(allowed, key=lambda a: (abs(a - seconds), -a))


def clamp_seconds(seconds: int, lowest: int, highest: int) -> int:
    return max(lowest, min(highest, seconds))


def whole_seconds(value: Any) -> str | None:
    """A duration from an upstream (int, float, "5.042", "10.0") as a whole-number string."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return str(max(1, round(number)))


def created_id(value: Any, detail: str | None = None) -> str:
    """The upstream id from a create answer that said yes: a non-empty string (a number is
    taken as its digits). Without one the job may still exist upstream, so it must not be sent
    again: Unavailable with maybe_created."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise Unavailable(
            "the upstream accepted the job without a task id", maybe_created=True, detail=detail
        )
    return value


def clean_metadata(metadata: Mapping[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """Metadata without the keys that select the model or that the relay controls, nor the
    provider's own `also` (lower case)."""
    refused = CONTROLLED_KEYS | frozenset(also)
    return {k: v for k, v in metadata.items() if k.lower() not in refused}


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; lists and scalars in `extra` replace those in `base`."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_metadata(body: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    return deep_merge(body, clean_metadata(metadata))


def from_millis(value: Any) -> float | None:
    """Unix seconds from a millisecond timestamp (Kling)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value / 1000.0


def unix_seconds(value: Any) -> float | None:
    """Unix seconds from an integer that may be seconds or milliseconds (> 10^12)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value / 1000.0 if value > 10**12 else float(value)


def from_rfc3339(value: Any) -> float | None:
    """Unix seconds from an RFC 3339 string such as 2025-01-01T15:41:31.968916Z (Vidu)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def from_local_time(value: Any, utc_offset_hours: float) -> float | None:
    """Unix seconds from a zone-less "2025-09-29 14:18:52.331" in a known zone (DashScope)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    zone = timezone(timedelta(hours=utc_offset_hours))
    return parsed.replace(tzinfo=parsed.tzinfo or zone).timestamp()


def percent(value: Any) -> int | None:
    """An upstream progress (42, 42.5, "42", "42%") as an int 0..100, or None."""
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return max(0, min(100, int(number)))


def moderation_words(text: str, words: Iterable[str]) -> bool:
    lowered = text.lower()
    return any(w in lowered for w in words)


def retry_after(source: Mapping[str, str] | str | None) -> float | None:
    """Seconds to wait, from response headers (`retry-after-ms`, else `Retry-After`, looked up
    case-insensitively) or from one Retry-After value: a number of seconds or an HTTP date."""
    if isinstance(source, Mapping):
        lowered = {k.lower(): v for k, v in source.items()}
        millis = lowered.get("retry-after-ms")
        if millis is not None:
            try:
                value = float(millis) / 1000.0
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                return max(0.0, value)
        source = lowered.get("retry-after")
    if not source:
        return None
    try:
        seconds = float(source)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(source).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_of(
    kind: str,
    message: str,
    *,
    detail: str | None = None,
    retry_after: float | None = None,
    param: str | None = None,
    maybe_created: bool = False,
) -> ProviderError:
    """The exception for a normalized error class (the `error.code` table of
    providers/README.md); anything else is an outage."""
    if kind == "upstream_auth_failed":
        return AuthFailed(message, detail=detail)
    if kind == "insufficient_quota":
        return QuotaExceeded(message, detail=detail)
    if kind == "rate_limit_exceeded":
        return RateLimited(message, retry_after=retry_after, detail=detail)
    if kind == "moderation_blocked":
        return Rejected(message, moderation=True, param=param, detail=detail)
    if kind == "invalid_request":
        return Rejected(message, param=param, detail=detail)
    if kind == "task_expired":
        return TaskNotFound(message, detail=detail)
    return Unavailable(message, maybe_created=maybe_created, detail=detail)


_EXPLAINED = {
    "upstream_auth_failed": "the upstream refused the credentials ({})",
    "insufficient_quota": "the upstream account cannot pay for this ({})",
    "rate_limit_exceeded": "the upstream is rate limiting ({})",
    "task_expired": "the upstream task is gone ({})",
    "upstream_error": "the upstream failed ({})",
}


def explain(kind: str, text: str) -> str:
    """A native "code: message" in a sentence a client understands; bad requests and moderation
    speak for themselves."""
    return _EXPLAINED.get(kind, "{}").format(text)


def url_expiry(url: str) -> float | None:
    """The `Expires` query parameter of a signed object-store URL (Alibaba OSS, MiniMax's
    CDN), when it is 10-digit Unix seconds."""
    try:
        values = parse_qs(urlsplit(url).query).get("Expires", [])
    except ValueError:  # a URL that does not parse: fetching it is an upstream error, later
        return None
    value = values[0] if values else ""
    return float(value) if len(value) == 10 and value.isdigit() else None


def nominal_size(w: int, h: int, short: int) -> str:
    """WxH of the ratio w:h at a short side, the long side rounded to an even number (16:9 at
    720 is 1280x720, 4:3 at 720 is 960x720)."""
    long = int(round(short * max(w, h) / min(w, h) / 2) * 2)
    return f"{long}x{short}" if w >= h else f"{short}x{long}"
