"""The channel table: which channels serve a public model, in which order, and their health.

Order: higher `priority` tiers first; inside a tier, a weighted random order (`weight`), so load
spreads while a tier has room. A channel is skipped while it cools down after an upstream failure
(exponential, at least the upstream's Retry-After), while its credentials are refused (until the
config is reloaded), or while `max_in_flight` tasks already run on it.

The table is rebuilt on every config reload; in-flight counts are recounted from the store then.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from relay.config import ChannelConfig
from relay.providers.base import Provider

log = logging.getLogger("relay.channels")

COOLDOWN_FIRST_S = 5.0
COOLDOWN_MAX_S = 300.0


@dataclass
class Channel:
    config: ChannelConfig
    adapter: Provider
    in_flight: int = 0
    cooldown_until: float = 0.0
    failures: int = 0  # consecutive, for the exponential cooldown
    auth_refused: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def full(self) -> bool:
        limit = self.config.max_in_flight
        return limit > 0 and self.in_flight >= limit

    def available(self, now: float) -> bool:
        return self.config.enabled and not self.auth_refused and now >= self.cooldown_until


@dataclass(frozen=True)
class Selection:
    """Channels to try in order, and why the others were left out."""

    channels: list[Channel]
    full: list[Channel] = field(default_factory=list)
    cooling: list[Channel] = field(default_factory=list)


class ChannelTable:
    def __init__(self, channels: Iterable[Channel], rng: random.Random | None = None) -> None:
        self._channels = {c.name: c for c in channels}
        self._rng = rng or random.Random()

    def __iter__(self):  # type: ignore[no-untyped-def]
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

    def order(self, channels: Iterable[Channel], now: float) -> Selection:
        ready, full, cooling = [], [], []
        for channel in channels:
            if not channel.available(now):
                cooling.append(channel)
            elif channel.full:
                full.append(channel)
            else:
                ready.append(channel)
        tiers: dict[int, list[Channel]] = {}
        for channel in ready:
            tiers.setdefault(channel.config.priority, []).append(channel)
        ordered: list[Channel] = []
        for priority in sorted(tiers, reverse=True):
            ordered += self._weighted_shuffle(tiers[priority])
        return Selection(ordered, full, cooling)

    def _weighted_shuffle(self, channels: list[Channel]) -> list[Channel]:
        # Efraimidis-Spirakis: sort by u^(1/w); P(first) is proportional to the weight.
        keyed = [(self._rng.random() ** (1.0 / c.config.weight), c) for c in channels]
        return [c for _, c in sorted(keyed, key=lambda kc: kc[0], reverse=True)]

    # --- health ------------------------------------------------------------------------

    def succeeded(self, channel: Channel) -> None:
        if channel.failures or channel.cooldown_until:
            log.info("channel %s is back", channel.name)
        channel.failures = 0
        channel.cooldown_until = 0.0

    def cool_down(self, channel: Channel, now: float, retry_after: float | None, why: str) -> float:
        """Take a channel out for a while; the pause doubles with each failure in a row."""
        channel.failures += 1
        pause: float = min(COOLDOWN_MAX_S, COOLDOWN_FIRST_S * 2.0 ** (channel.failures - 1))
        if retry_after is not None:
            pause = max(pause, min(retry_after, 3600.0))
        if now >= channel.cooldown_until:
            log.warning("channel %s cools down for %.0f s: %s", channel.name, pause, why)
        channel.cooldown_until = max(channel.cooldown_until, now + pause)
        return pause

    def refuse_auth(self, channel: Channel, why: str) -> None:
        if not channel.auth_refused:
            log.error(
                "channel %s is out until the config is reloaded: the upstream refused its "
                "credentials (%s)",
                channel.name,
                why,
            )
        channel.auth_refused = True

    def set_in_flight(self, counts: Mapping[str, int]) -> None:
        for channel in self._channels.values():
            channel.in_flight = counts.get(channel.name, 0)
