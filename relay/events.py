"""What happened, as small events: the one seam between the use cases and whatever watches them.

Use cases and workers emit; logging "once", webhooks and stored-copy wake-ups, the poller's
first-poll timer and (next) metrics and the dashboard's live updates subscribe. A subscriber is a
plain function called in the emitter's task: it must be quick and must not block (wake a worker,
bump a counter, write a log line). A subscriber that raises is logged and the others still run;
it never fails the use case that emitted.

    TaskCreated        a task row was written (before its upstream call)
    TaskSubmitted      an upstream accepted it; its first poll falls due at `next_poll_at`
    TaskFinished       the one transition to completed or failed
    ChannelChanged     a channel's health changed (cooling, back, credentials refused, ...)
    PollRan            one upstream status check, with its lag behind the due time
    UpstreamCall       one HTTP call to a channel's upstream, with outcome and duration
    UpstreamOp         one adapter operation (submit, poll, content, delete, refresh,
                       cancel), with what it raised (None: ok) and its duration; emitted around
                       the adapter call by `upstream_op`, so it covers adapters without HTTP (the
                       demo) and classes the provider error, which an HTTP status alone cannot
    DownloadStarted    a content body starts going out to a client
    DownloadEnded      ... and has ended, however it ended (one for each DownloadStarted)
    BytesStreamed      content sent to a client (from upstream or from a stored copy)
    CopyStored         a finished video was copied into storage
    WebhookDelivered   a webhook event reached its receiver (or was given up)
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger("relay.events")


@dataclass(frozen=True)
class TaskCreated:
    task_id: str
    owner: str
    model: str
    channel: str


@dataclass(frozen=True)
class TaskSubmitted:
    task_id: str
    channel: str
    provider: str
    next_poll_at: float | None
    model: str = ""  # the public model


@dataclass(frozen=True)
class TaskFinished:
    task_id: str
    owner: str
    channel: str
    provider: str
    status: str  # completed | failed
    error_code: str | None


@dataclass(frozen=True)
class ChannelChanged:
    channel: str
    state: str  # ready | cooling | rate_limited | credentials | quota
    until: float | None  # when the pause ends (None: ready)
    why: str  # a short reason, already fit for a log line
    at: float = 0.0  # when the change happened
    remote: bool = False  # another relay changed it (adopted here, not published again)


@dataclass(frozen=True)
class PollRan:
    task_id: str
    channel: str
    lag_s: float  # how late the check ran behind its due time
    outcome: str  # "ok", or the error class the upstream answered with


@dataclass(frozen=True)
class UpstreamCall:
    channel: str
    provider: str
    method: str
    status: int | None  # None: no HTTP answer (timeout, refused connection)
    outcome: str  # "ok", "http_4xx", "http_5xx", or the transport error's name
    duration_s: float


@dataclass(frozen=True)
class UpstreamOp:
    channel: str
    provider: str
    op: str  # submit | poll | content | delete | refresh | cancel
    error: Exception | None  # what the adapter raised (a ProviderError, or a bug); None: ok
    duration_s: float


@dataclass(frozen=True)
class DownloadStarted:
    task_id: str
    variant: str
    source: str  # "upstream", or "local"


@dataclass(frozen=True)
class DownloadEnded:
    task_id: str
    variant: str
    source: str


@dataclass(frozen=True)
class BytesStreamed:
    task_id: str
    variant: str
    source: str  # "upstream", or "local" (a stored copy, the demo's files)
    bytes: int


@dataclass(frozen=True)
class CopyStored:
    task_id: str
    variant: str
    bytes: int


@dataclass(frozen=True)
class WebhookDelivered:
    event_id: str
    ok: bool  # False: given up after the last attempt
    attempts: int


E = TypeVar("E")
T = TypeVar("T")


class Events:
    """A synchronous fan-out by event type."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[type[Any], list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        self._subscribers[kind].append(handler)

    def emit(self, event: object) -> None:
        for handler in self._subscribers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                log.exception("a subscriber of %s failed", type(event).__name__)


class _Channel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def provider(self) -> str: ...


async def upstream_op(events: Events, channel: _Channel, op: str, call: Awaitable[T]) -> T:
    """Await one adapter call and emit its UpstreamOp. A cancelled call (the client left, the
    relay stops) is no upstream outcome and emits nothing."""
    started = time.monotonic()
    try:
        result = await call
    except Exception as exc:
        events.emit(UpstreamOp(channel.name, channel.provider, op, exc, time.monotonic() - started))
        raise
    events.emit(UpstreamOp(channel.name, channel.provider, op, None, time.monotonic() - started))
    return result
