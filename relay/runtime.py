"""What a config reload replaces as one piece (the config, the channel table, keys and limits),
behind one holder the use cases and handlers share: `swap()` puts a new one in place while
running tasks and downloads go on."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from relay.auth import Authenticator
from relay.config import Config
from relay.events import Events
from relay.limits import RateLimits
from relay.providers.base import Provider
from relay.routing import Channel, ChannelTable, build_adapter
from relay.store import Store
from relay.upstream import Http


@dataclass(frozen=True)
class Parts:
    config: Config
    channels: ChannelTable
    auth: Authenticator
    limiter: RateLimits


def build_parts(
    config: Config,
    *,
    providers: Mapping[str, type[Provider[Any]]],
    store: Store,
    http: Http | None,
    events: Events | None = None,
    clock: Callable[[], float] = time.time,
) -> Parts:
    channels = ChannelTable(
        (
            Channel(cfg, build_adapter(cfg, providers[cfg.provider], http, events))
            for cfg in config.channels
        ),
        events=events,
        clock=clock,
    )
    return Parts(
        config=config,
        channels=channels,
        auth=Authenticator(store, config.keys),
        limiter=RateLimits(store, config.limits.requests_per_minute),
    )


class Runtime:
    """The current parts; read them afresh for each request or round."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    @property
    def parts(self) -> Parts:
        return self._parts

    @property
    def config(self) -> Config:
        return self._parts.config

    @property
    def channels(self) -> ChannelTable:
        return self._parts.channels

    @property
    def auth(self) -> Authenticator:
        return self._parts.auth

    @property
    def limiter(self) -> RateLimits:
        return self._parts.limiter

    def swap(self, parts: Parts) -> None:
        self._parts = parts
