"""The channel table: which channels serve a public model, in which order, their health and
their in-flight counts; `routes(request)` maps a request to its candidates once.

Order: higher `priority` tiers first; inside a tier, a weighted random order (`weight`), so load
spreads while a tier has room.

Health, per channel (what each provider error does to it is decided in policy.py):
- A breaker: 3 submit failures in a row (5xx, timeout, refused connection) open it for 5 s,
  doubling with each opening up to 5 min (at least the upstream's Retry-After). When the pause
  ends, one request probes it (half-open); its success closes the breaker, its failure opens it
  again for longer. While every channel of a model is cooling after failures, one request at a
  time still goes to the channel whose pause ends first, so one hiccup never blacks out a model.
- A 429 pauses the channel for its Retry-After (5 s without one).
- Refused credentials, or an exhausted quota, take the channel out; one request every 15 minutes
  probes it, so a fixed or topped-up account comes back without a reload (a reload resets at once).
- `max_in_flight`: a slot is taken before the upstream call (and given back if the submit fails),
  so a burst cannot pass the cap; a slot is freed when its task finishes, and the counts are
  recounted from the store on a schedule, so tasks finished by another process free theirs too.

The table is rebuilt on every config reload.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from relay.config import ChannelConfig
from relay.domain import Shape, VideoRequest
from relay.events import ChannelChanged, Events
from relay.policy import ChannelEffect
from relay.providers.base import ChannelView, Provider
from relay.providers.http import ChannelHttp
from relay.upstream import Http

BREAKER_AFTER = 3  # submit failures in a row that open a channel's breaker
PAUSE_FIRST_S = 5.0
PAUSE_MAX_S = 300.0
RETRY_AFTER_MAX_S = 3600.0
RATE_LIMIT_PAUSE_S = 5.0  # a 429 without Retry-After
PROBE_EVERY_S = 900.0  # refused credentials, exhausted quota

READY, COOLING, RATE_LIMITED, CREDENTIALS, QUOTA = (
    "ready",
    "cooling",
    "rate_limited",
    "credentials",
    "quota",
)
_STATES = frozenset({READY, COOLING, RATE_LIMITED, CREDENTIALS, QUOTA})
# when the pause ends, these are left one request at a time (a probe)
_PROBED = frozenset({COOLING, CREDENTIALS, QUOTA})
_SHAPE_FALLBACK: Mapping[Shape, tuple[Shape, ...]] = {
    "text": ("text",),
    "image": ("image", "text"),
    "frames": ("frames", "image", "text"),
    "reference": ("reference", "image", "text"),
}


def upstream_models(config: ChannelConfig, public: str) -> list[str]:
    """The upstream model names a channel sends for a public one (one per shape at most)."""
    mapped = config.model_map.get(public, public)
    return [mapped] if isinstance(mapped, str) else list(dict.fromkeys(mapped.values()))


def upstream_model(config: ChannelConfig, public: str, shape: Shape = "text") -> str:
    """The upstream model for a public one and a job's shape; a shape the channel's model_map
    table does not name falls back to the next simpler one."""
    mapped = config.model_map.get(public, public)
    if isinstance(mapped, str):
        return mapped
    for candidate in _SHAPE_FALLBACK[shape]:
        if candidate in mapped:
            return mapped[candidate]
    return next(iter(mapped.values()))


def build_adapter(
    config: ChannelConfig,
    cls: type[Provider[Any]],
    http: Http | None,
    events: Events | None = None,
) -> Provider[Any]:
    """The adapter of one channel, seeing only its view of the channel."""
    known = {k: v for k, v in config.options.items() if k in cls.Options.__dataclass_fields__}
    view = ChannelView(
        name=config.name,
        options=cls.Options(**known),
        base_url=config.base_url,
        api_key=config.api_key,
        access_key=config.access_key,
        secret_key=config.secret_key,
    )
    channel_http = None
    if cls.needs_network and http is not None:
        channel_http = ChannelHttp(
            http, config.timeout_s, channel=config.name, provider=cls.name, events=events
        )
    return cls(view, channel_http)


@dataclass
class Health:
    state: str = READY
    until: float = 0.0  # when the pause ends
    failures: int = 0  # submit failures in a row
    openings: int = 0  # breaker openings in a row, for the doubling pause
    probing: bool = False  # a half-open request is in flight
    last_error: str | None = None  # the error class of the last failure, for the operator
    last_error_at: float | None = None
    changed_at: float = 0.0  # when the state last changed, here or on another relay


@dataclass
class Channel:
    config: ChannelConfig
    adapter: Provider[Any]
    health: Health = field(default_factory=Health)
    in_flight: int = 0  # slots taken: tasks running on it, and submits under way
    reserving: int = 0  # slots whose task row is not written (or moved here) yet

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def provider(self) -> str:
        return self.config.provider

    @property
    def full(self) -> bool:
        limit = self.config.max_in_flight
        return limit > 0 and self.in_flight >= limit


@dataclass(frozen=True)
class Route:
    """One candidate for a request: the channel, and the upstream model it would run."""

    channel: Channel
    upstream_model: str
    shape: Shape


@dataclass(frozen=True)
class Admission:
    """The route that may try now (holding an in-flight slot), or why none may."""

    route: Route | None
    full: bool = False  # some candidate was skipped only because it is full
    back_at: float | None = None  # when the first cooling candidate is back


class ChannelTable:
    def __init__(
        self,
        channels: Iterable[Channel],
        *,
        events: Events | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._channels = {c.name: c for c in channels}
        self._counting = asyncio.Lock()
        self._events = events
        self._clock = clock
        self._rng = rng or random.Random()

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._channels.values())

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def models(self) -> list[str]:
        """Public model names served by at least one enabled channel."""
        return sorted(
            {m for c in self._channels.values() if c.config.enabled for m in c.config.models}
        )

    def knows(self, model: str) -> bool:
        return any(model in c.config.models for c in self._channels.values())

    def serving(self, model: str) -> list[Channel]:
        """Enabled channels listing the model, whatever their health."""
        return [c for c in self._channels.values() if c.config.enabled and model in c.config.models]

    def cancels(self, model: str) -> bool:
        """Whether a task of this public model can be stopped wherever it runs: every enabled
        channel serving it cancels, for each upstream model the name maps to there."""
        pool = self.serving(model)
        return bool(pool) and all(
            c.adapter.can_cancel(upstream)
            for c in pool
            for upstream in upstream_models(c.config, model)
        )

    # --- routing --------------------------------------------------------------------------

    def routes(
        self, request: VideoRequest, channels: Iterable[Channel] | None = None
    ) -> list[Route]:
        """Every enabled channel serving the request's model (or the given ones), as a route, in
        the order they are tried: priority tiers, weighted random inside a tier."""
        model = request.public_model
        pool = self.serving(model) if channels is None else list(channels)
        tiers: dict[int, list[Channel]] = {}
        for channel in pool:
            tiers.setdefault(channel.config.priority, []).append(channel)
        ordered: list[Channel] = []
        for priority in sorted(tiers, reverse=True):
            ordered += self._weighted_shuffle(tiers[priority])
        shape = request.shape
        return [Route(c, upstream_model(c.config, model, shape), shape) for c in ordered]

    def _weighted_shuffle(self, channels: list[Channel]) -> list[Channel]:
        # Efraimidis-Spirakis: sort by u^(1/w); P(first) is proportional to the weight.
        keyed = [(self._rng.random() ** (1.0 / c.config.weight), c) for c in channels]
        return [c for _, c in sorted(keyed, key=lambda kc: kc[0], reverse=True)]

    def admit(self, routes: Iterable[Route], *, early_probe: bool = True) -> Admission:
        """The first route whose channel may take a request now, with a slot taken for it.

        With every candidate cooling after failures, `early_probe` lets this request probe the
        one back first; a request that already failed over does not probe a second one."""
        now = self._clock()
        routes = list(routes)
        full = False
        cooling: list[Route] = []
        for route in routes:
            channel, health = route.channel, route.channel.health
            if health.state == RATE_LIMITED and now >= health.until:
                self._change(channel, READY, "the upstream's rate-limit pause is over")
            if health.state != READY:
                if health.state in _PROBED and now >= health.until and not health.probing:
                    if self._take(channel, probe=True):
                        return Admission(route)
                    full = True
                else:
                    cooling.append(route)
                continue
            if self._take(channel, probe=False):
                return Admission(route)
            full = True
        # Every candidate cooling after failures: the one back first takes one request at a time.
        all_cooling = all(r.channel.health.state == COOLING for r in cooling)
        if early_probe and cooling and not full and all_cooling:
            first = min(cooling, key=lambda r: r.channel.health.until)
            if not first.channel.health.probing and self._take(first.channel, probe=True):
                return Admission(first)
        back_at = min((r.channel.health.until for r in cooling), default=None)
        return Admission(None, full=full, back_at=back_at)

    def _take(self, channel: Channel, *, probe: bool) -> bool:
        if channel.full:
            return False
        channel.in_flight += 1
        channel.reserving += 1
        channel.health.probing = probe
        return True

    @asynccontextmanager
    async def placing(self, channel: Channel) -> AsyncIterator[None]:
        """Around writing the task row that holds a slot just taken (created, or moved to this
        channel): a recount never runs in between, so it neither misses nor doubles the slot."""
        async with self._counting:
            try:
                yield
            finally:
                channel.reserving -= 1

    async def recount(self, count: Callable[[], Awaitable[Mapping[str, int]]]) -> None:
        """Running tasks per channel as the store counts them (every process's), plus the slots
        of submits whose row is not written yet."""
        async with self._counting:
            counts = await count()
            for channel in self._channels.values():
                channel.in_flight = counts.get(channel.name, 0) + channel.reserving

    def release(self, channel: Channel) -> None:
        """Give a slot back: the submit failed, or the task finished."""
        channel.in_flight = max(0, channel.in_flight - 1)

    def release_by_name(self, name: str) -> None:
        channel = self._channels.get(name)
        if channel is not None:
            self.release(channel)

    def set_in_flight(self, counts: Mapping[str, int]) -> None:
        """Running tasks per channel, as the store counts them, for a table nobody uses yet."""
        for channel in self._channels.values():
            channel.in_flight = counts.get(channel.name, 0)

    # --- health ---------------------------------------------------------------------------

    def record(
        self,
        channel: Channel,
        effect: ChannelEffect,
        *,
        error: str | None = None,
        retry_after: float | None = None,
        why: str = "",
    ) -> None:
        """Apply what policy decided an upstream answer means for the channel."""
        now = self._clock()
        health = channel.health
        probing, health.probing = health.probing, False
        if error is not None:
            health.last_error, health.last_error_at = error, now
        if effect is ChannelEffect.ALIVE:
            health.failures = 0
            health.openings = 0
            if health.state != READY:
                self._change(channel, READY, "it answered again")
            return
        if effect is ChannelEffect.FAILURE:
            health.failures += 1
            if health.failures < BREAKER_AFTER and not probing and health.state == READY:
                return
            health.openings += 1
            pause = min(PAUSE_MAX_S, PAUSE_FIRST_S * 2.0 ** (health.openings - 1))
            if retry_after is not None:
                pause = max(pause, min(retry_after, RETRY_AFTER_MAX_S))
            self._pause(channel, COOLING, now + pause, why)
        elif effect is ChannelEffect.PAUSE:
            pause = RATE_LIMIT_PAUSE_S if retry_after is None else retry_after
            self._pause(channel, RATE_LIMITED, now + min(pause, RETRY_AFTER_MAX_S), why)
        elif effect is ChannelEffect.REFUSED:
            self._pause(channel, CREDENTIALS, now + PROBE_EVERY_S, why)
        elif effect is ChannelEffect.QUOTA:
            self._pause(channel, QUOTA, now + PROBE_EVERY_S, why)

    def _pause(self, channel: Channel, state: str, until: float, why: str) -> None:
        health = channel.health
        health.until = max(until, health.until) if health.state == state else until
        if health.state != state:
            self._change(channel, state, why)

    def _change(self, channel: Channel, state: str, why: str, *, remote: bool = False) -> None:
        health = channel.health
        health.state = state
        health.changed_at = self._clock()
        if state == READY:
            health.until = 0.0
        if self._events is not None:
            until = health.until if state != READY else None
            self._events.emit(
                ChannelChanged(channel.name, state, until, why, health.changed_at, remote)
            )

    def adopt(
        self, channel_name: str, state: str, until: float | None, why: str, at: float
    ) -> None:
        """Another relay changed a channel's health: take the newer of its change and ours."""
        channel = self._channels.get(channel_name)
        if channel is None or at <= channel.health.changed_at or state not in _STATES:
            return
        health = channel.health
        health.probing = False
        if state == READY:
            health.failures = health.openings = 0
        else:
            health.until = until or 0.0
        self._change(channel, state, why, remote=True)
        health.changed_at = at

    def retry_after(self, admission: Admission) -> float:
        """Seconds until the first channel of a refused request is back, at least 1."""
        if admission.back_at is None:
            return 1.0
        return max(1.0, admission.back_at - self._clock())
