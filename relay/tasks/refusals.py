"""When a request cannot be placed or every channel failed: the client's error, and the routes
a request can take at all (checked before any upstream call)."""

from __future__ import annotations

from relay.domain import VideoRequest
from relay.errors import (
    InvalidRequest,
    NoAvailableChannel,
    RateLimitExceeded,
    UpstreamFailed,
    safe_message,
)
from relay.routing import Admission, ChannelTable, Route

RATE_LIMITED_WAIT_S = (1.0, 300.0)  # every channel answered 429: their wait, clamped to this


def capable(request: VideoRequest, routes: list[Route]) -> list[Route]:
    """The routes whose provider can do the request, checked before any upstream call."""
    capable, refusal = [], None
    for route in routes:
        why = route.channel.adapter.refusal(request, route.upstream_model)
        if why:
            refusal = refusal or why
        else:
            capable.append(route)
    if not capable:
        assert refusal is not None
        raise InvalidRequest(safe_message(refusal), code="unsupported_feature")
    return capable


def refused(
    request: VideoRequest,
    channels: ChannelTable,
    admission: Admission,
    interval_s: float,
    *,
    full: bool = False,
) -> Exception:
    """No channel may take the request now: all full (429) or cooling (503), with a wait."""
    if (admission.full or full) and admission.back_at is None:
        return RateLimitExceeded(
            "every channel for this model is running as many tasks as it may; retry soon",
            retry_after=interval_s,
        )
    return NoAvailableChannel(
        f"no channel can take {request.public_model!r} right now; retry later",
        retry_after=channels.retry_after(admission),
    )


def all_failed(failures: int, limited: list[float]) -> Exception:
    """Every channel failed and nothing was created: a 429 when they all rate limited (a retry
    is then safe, after their shortest wait), else a 502."""
    if limited and len(limited) == failures:
        low, high = RATE_LIMITED_WAIT_S
        return RateLimitExceeded(
            "every upstream channel for this model is rate limiting; nothing was created",
            retry_after=max(low, min(high, min(limited))),
        )
    return UpstreamFailed("every upstream channel for this model failed; nothing was created")
